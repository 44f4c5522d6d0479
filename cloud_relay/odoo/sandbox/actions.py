"""Window actions as ``ir.actions.act_window._for_xml_id`` returns them, per Odoo version.

18's key set is the one recorded live; 17 lacks ``path``, ``embedded_action_ids``;
19 renames ``groups_id`` to ``group_ids``.
"""

from __future__ import annotations

from typing import Any


def window_action(
    version: int,
    xml_id: str,
    action_id: int,
    name: str,
    res_model: str,
    context: dict[str, Any],
) -> dict[str, Any]:
    """The dict a wizard-opening method returns, keys in Odoo's order."""
    action: dict[str, Any] = {
        "id": action_id,
        "name": name,
        "type": "ir.actions.act_window",
        "xml_id": xml_id,
    }
    if version >= 18:
        action["path"] = False
    action.update(
        {
            "help": False,
            "binding_model_id": False,
            "binding_type": "action",
            "binding_view_types": "list,form",
            "display_name": name,
            "view_id": False,
            "domain": False,
            "context": context,
            "res_id": 0,
            "res_model": res_model,
            "target": "new",
            "view_mode": "form",
            "mobile_view_mode": "kanban",
            "views": [[False, "form"]],
            "limit": 80,
            ("group_ids" if version >= 19 else "groups_id"): [],
            "search_view_id": False,
        }
    )
    if version >= 18:
        action["embedded_action_ids"] = []
    action["filter"] = False
    return action
