"""``ir.model.data``: external ids, as far as a connector relies on them (contract §8).

A plain internal user has no access to the model itself; ``check_object_reference`` resolves
an id for anyone, and ``Model.load`` binds ids in the same transaction as the record.
"""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import AccessError, PythonValueError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.orm import Model, public, sql_constraint


class ModelData(Model):
    """``ir.model.data``: ``module.name`` -> ``(model, res_id)``, unique on (module, name)."""

    _name = "ir.model.data"
    _description = "Model Data"
    _order = "module, model, name"
    _rec_name = "complete_name"
    _indexed = ("name",)

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "module": f.char("Module", required=True, default=""),
            "name": f.char("External Identifier", required=True),
            "model": f.char("Model Name", required=True),
            "res_id": f.integer("Record ID"),
            "noupdate": f.boolean("Non Updatable"),
            "complete_name": f.char("Complete ID", compute=_complete_name),
        }

    def _check(self, row: Any) -> None:
        name = str(row.get("name") or "")
        if " " in name:
            raise sql_constraint("External IDs cannot contain spaces")
        module = row.get("module")
        for other in self.env.db.lookup(self._name, "name", name) - {row.get("id")}:
            if self.row(other).get("module") == module:
                raise sql_constraint(
                    'duplicate key value violates unique constraint "ir_model_data_module_name'
                    '_uniq_index"\n'
                    f"DETAIL:  Key (module, name)=({module}, {name}) already exists.\n"
                )

    def find(self, xmlid: str) -> int | None:
        """The ``ir.model.data`` id of ``module.name``, or None."""
        module, _, name = xmlid.partition(".")
        for record_id in self.env.db.lookup(self._name, "name", name):
            if self.row(record_id).get("module") == module:
                return record_id
        return None

    def resolve(self, xmlid: str, model: str | None = None) -> int | None:
        """The record id an external id points to (optionally only on ``model``)."""
        found = self.find(xmlid)
        if found is None:
            return None
        row = self.row(found)
        if model is not None and row.get("model") != model:
            return None
        return int(row["res_id"])

    def bind(self, xmlid: str, model: str, res_id: int) -> None:
        """Point ``xmlid`` at ``model, res_id``, creating the external id if needed."""
        module, _, name = xmlid.partition(".")
        found = self.find(xmlid)
        if found is None:
            self.new({"module": module, "name": name, "model": model, "res_id": res_id})
        else:
            self.update([found], {"model": model, "res_id": res_id})

    @public(records=False, access=())
    def check_object_reference(
        self, module: str, xml_id: str, raise_on_access_error: bool = False
    ) -> list[Any]:
        """``[model, res_id]`` for an external id; ``res_id`` is False if it can't be read."""
        del raise_on_access_error
        found = self.find(f"{module}.{xml_id}")
        if found is None:
            raise PythonValueError(f"External ID not found in the system: {module}.{xml_id}")
        row = self.row(found)
        target = self.env[str(row["model"])]
        try:
            target.check_access("read")
        except AccessError:
            return [row["model"], False]
        return [row["model"], row["res_id"]]


def _complete_name(model: Model, row: Any) -> str:
    del model
    return f"{row.get('module')}.{row.get('name')}"
