"""``res.config.settings``: the two switches the contract's flows touch (lots, work orders).

Turning work orders off archives every operation; turning them on again re-activates those
archived last, as Odoo's mrp settings do. Both are on at start, as in Odoo's demo data.
"""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.orm import Model, public
from cloud_relay.odoo.sandbox.security import LOTS, ROUTINGS, feature_key

_SWITCHES = {"group_mrp_routings": ROUTINGS, "group_stock_production_lot": LOTS}


class Settings(Model):
    """``res.config.settings``: a transient record whose ``execute`` applies its values."""

    _name = "res.config.settings"
    _description = "Config Settings"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "group_mrp_routings": f.boolean("Work Orders", default=_current(ROUTINGS)),
            "group_stock_production_lot": f.boolean(
                "Lots & Serial Numbers", default=_current(LOTS)
            ),
        }

    @public(access=("write",))
    def execute(self, ids: list[int]) -> dict[str, Any]:
        """Apply the settings and ask the web client to reload."""
        company = self.env.sudo()["res.company"]
        for record_id in ids:
            row = self.row(record_id)
            for name, xmlid in _SWITCHES.items():
                before = bool(company.row(1).get(feature_key(xmlid)))
                after = bool(row.get(name))
                if before == after:
                    continue
                self.env.db.update("res.company", 1, {feature_key(xmlid): after})
                if xmlid == ROUTINGS:
                    self._switch_operations(after)
        return {"type": "ir.actions.client", "tag": "reload"}

    def _switch_operations(self, enable: bool) -> None:
        operations = self.env.sudo().with_context(active_test=False)["mrp.routing.workcenter"]
        if not enable:
            operations.update(operations.search_ids([["active", "=", True]]), {"active": False})
            return
        archived = operations.search_ids([["active", "=", False]])
        if not archived:
            return
        last = max(str(operations.get(i, "write_date")) for i in archived)
        operations.update(
            [i for i in archived if operations.get(i, "write_date") == last], {"active": True}
        )


def _current(xmlid: str) -> Any:
    def default(env: Any, vals: Any) -> bool:
        del vals
        company = env.db.get("res.company", 1) or {}
        return bool(company.get(feature_key(xmlid)))

    return default
