"""Groups and model access rights (Odoo's ``ir.model.access`` lines for the sandbox's models).

Only the groups a manufacturing connector meets are modelled. An ``AccessError`` names the
groups that would allow the operation, as Odoo's ``_make_access_error`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud_relay.odoo.sandbox.errors import AccessError


@dataclass(frozen=True)
class Group:
    """A ``res.groups`` record: its database id, external id, display name and implied groups."""

    id: int
    xmlid: str
    display_name: str
    implies: tuple[str, ...] = ()


USER = "base.group_user"
ERP_MANAGER = "base.group_erp_manager"
SYSTEM = "base.group_system"
STOCK_USER = "stock.group_stock_user"
STOCK_MANAGER = "stock.group_stock_manager"
MRP_USER = "mrp.group_mrp_user"
MRP_MANAGER = "mrp.group_mrp_manager"
PRODUCT_CREATION = "product.group_product_manager"
ROUTINGS = "mrp.group_mrp_routings"
LOTS = "stock.group_production_lot"

GROUPS: tuple[Group, ...] = (
    Group(1, USER, "Role / User"),
    Group(3, ERP_MANAGER, "Administration/Access Rights", (USER,)),
    Group(4, SYSTEM, "Administration/Settings", (ERP_MANAGER,)),
    Group(8, PRODUCT_CREATION, "Extra Rights/Product Creation", (USER,)),
    Group(22, STOCK_USER, "Inventory/User", (USER,)),
    Group(23, STOCK_MANAGER, "Inventory/Administrator", (STOCK_USER,)),
    Group(26, LOTS, "Technical/Manage Lots / Serial Numbers"),
    Group(33, MRP_USER, "Manufacturing/User", (USER,)),
    Group(34, MRP_MANAGER, "Manufacturing/Administrator", (MRP_USER,)),
    Group(35, ROUTINGS, "Technical/Manage Work Order Operations"),
)
GROUPS_BY_XMLID = {group.xmlid: group for group in GROUPS}
FEATURE_GROUPS = (ROUTINGS, LOTS)
"""Groups the settings switch on for every internal user (implied by ``base.group_user``)."""
GROUPS_BY_ID = {group.id: group for group in GROUPS}

OPERATIONS = ("read", "write", "create", "unlink")
_VERBS = {"read": "access", "write": "modify", "create": "create", "unlink": "delete"}

_R, _W, _C, _U = "read", "write", "create", "unlink"
_ALL = (_R, _W, _C, _U)
_NOT_UNLINK = (_R, _W, _C)

# model -> [(group, operations)], as in the modules' ir.model.access.csv files.
_ACCESS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "res.users": [(USER, (_R,)), (ERP_MANAGER, _ALL)],
    "res.groups": [(USER, (_R,)), (ERP_MANAGER, _ALL)],
    "res.company": [(USER, (_R,)), (ERP_MANAGER, _ALL)],
    "res.users.apikeys": [(USER, (_R,))],
    "res.users.apikeys.description": [(USER, (_R, _C))],
    "res.config.settings": [(SYSTEM, _ALL)],
    "ir.model.data": [(ERP_MANAGER, _ALL)],
    "uom.category": [(USER, (_R,)), (MRP_MANAGER, _ALL), (STOCK_MANAGER, _ALL)],
    "uom.uom": [(USER, (_R,)), (MRP_MANAGER, _ALL), (STOCK_MANAGER, _ALL)],
    "product.category": [(USER, (_R,)), (PRODUCT_CREATION, _ALL), (MRP_MANAGER, _ALL)],
    "product.template": [
        (USER, (_R,)),
        (PRODUCT_CREATION, _ALL),
        (STOCK_MANAGER, _ALL),
        (MRP_MANAGER, _ALL),
    ],
    "product.product": [
        (USER, (_R,)),
        (PRODUCT_CREATION, _ALL),
        (STOCK_MANAGER, _ALL),
        (MRP_MANAGER, _ALL),
    ],
    "stock.location": [(USER, (_R,)), (STOCK_MANAGER, _ALL)],
    "stock.warehouse": [(USER, (_R,)), (STOCK_MANAGER, _ALL)],
    "stock.picking.type": [(USER, (_R,)), (STOCK_MANAGER, _ALL)],
    "procurement.group": [(USER, (_R,)), (STOCK_USER, _ALL)],
    "stock.lot": [(USER, (_R,)), (STOCK_USER, _NOT_UNLINK), (STOCK_MANAGER, _ALL)],
    "stock.quant": [(USER, (_R,)), (STOCK_USER, _NOT_UNLINK), (STOCK_MANAGER, _ALL)],
    "stock.move": [(STOCK_USER, _NOT_UNLINK), (STOCK_MANAGER, _ALL), (MRP_USER, _ALL)],
    "stock.picking": [(STOCK_USER, _ALL)],
    "stock.move.line": [(STOCK_USER, _ALL), (STOCK_MANAGER, _ALL), (MRP_USER, _ALL)],
    "stock.scrap": [(STOCK_USER, _NOT_UNLINK), (STOCK_MANAGER, _ALL)],
    "stock.warn.insufficient.qty.scrap": [(STOCK_USER, _NOT_UNLINK)],
    "mrp.bom": [(STOCK_USER, (_R,)), (MRP_USER, (_R,)), (MRP_MANAGER, _ALL)],
    "mrp.bom.line": [(STOCK_USER, (_R,)), (MRP_USER, (_R,)), (MRP_MANAGER, _ALL)],
    "mrp.routing.workcenter": [(MRP_USER, (_R,)), (MRP_MANAGER, _ALL)],
    "mrp.workcenter": [(MRP_USER, (_R,)), (MRP_MANAGER, _ALL)],
    "mrp.workcenter.productivity": [(MRP_USER, _ALL), (MRP_MANAGER, _ALL)],
    "mrp.workcenter.productivity.loss": [(MRP_USER, (_R,)), (MRP_MANAGER, _ALL)],
    "mrp.production": [(STOCK_USER, (_R,)), (MRP_USER, _ALL), (MRP_MANAGER, _ALL)],
    "mrp.workorder": [(MRP_USER, _ALL), (MRP_MANAGER, _ALL)],
    "mrp.production.backorder": [(MRP_USER, _NOT_UNLINK)],
    "mrp.production.backorder.line": [(MRP_USER, _NOT_UNLINK)],
    "mrp.consumption.warning": [(MRP_USER, _NOT_UNLINK)],
    "mrp.consumption.warning.line": [(MRP_USER, _NOT_UNLINK)],
}


def feature_key(xmlid: str) -> str:
    """Key of the company row that records whether a feature group is switched on."""
    return f"_feature:{xmlid}"


def effective_groups(direct: frozenset[str]) -> frozenset[str]:
    """The groups a user is in, implied groups included."""
    found: set[str] = set()
    pending = list(direct)
    while pending:
        xmlid = pending.pop()
        if xmlid in found:
            continue
        found.add(xmlid)
        group = GROUPS_BY_XMLID.get(xmlid)
        if group is not None:
            pending.extend(group.implies)
    return frozenset(found)


def allowed_groups(model: str, operation: str) -> list[Group]:
    """The groups whose access lines allow ``operation`` on ``model``."""
    return [
        GROUPS_BY_XMLID[xmlid]
        for xmlid, operations in _ACCESS.get(model, [])
        if operation in operations
    ]


def check_access(groups: frozenset[str], model: str, description: str, operation: str) -> None:
    """Raise Odoo's ``AccessError`` unless one of ``groups`` may do ``operation`` on ``model``."""
    allowed = allowed_groups(model, operation)
    if any(group.xmlid in groups for group in allowed):
        return
    header = f"You are not allowed to {_VERBS[operation]} '{description}' ({model}) records."
    if allowed:
        names = sorted(group.display_name for group in allowed)
        listing = "\n".join(f"\t- {name}" for name in names)
        info = f"This operation is allowed for the following groups:\n{listing}"
    else:
        info = "No group currently allows this operation."
    resolution = "Contact your administrator to request access if necessary."
    raise AccessError(f"{header}\n\n{info}\n\n{resolution}")
