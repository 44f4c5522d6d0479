"""What a fresh Odoo database with mrp and stock holds before any master data: the company,
users and groups, units, locations, the warehouse and its manufacturing operation type, the
productivity loss reasons, and their external ids. Ids match the recorded 18.0 database where
the recordings show them (admin is 2, WH/Stock is 8, Units is 1...).

Products, BOMs, work centres and MOs are not seeded: a scenario creates them through the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud_relay.odoo.sandbox import units
from cloud_relay.odoo.sandbox.db import Database
from cloud_relay.odoo.sandbox.models.category import ALL_PRODUCTS
from cloud_relay.odoo.sandbox.models.location import (
    INTERNAL_TYPE,
    INVENTORY_LOCATION,
    MANUFACTURING_TYPE,
    PRODUCTION_LOCATION,
    RECEIPT_TYPE,
    SCRAP_LOCATION,
    STOCK_LOCATION,
    VENDOR_LOCATION,
    WAREHOUSE,
)
from cloud_relay.odoo.sandbox.models.workcenter import PERFORMANCE_LOSS, PRODUCTIVE_LOSS
from cloud_relay.odoo.sandbox.registry import Registry
from cloud_relay.odoo.sandbox.security import (
    ERP_MANAGER,
    GROUPS,
    LOTS,
    MRP_MANAGER,
    MRP_USER,
    PRODUCT_CREATION,
    ROUTINGS,
    STOCK_MANAGER,
    STOCK_USER,
    SYSTEM,
    USER,
    feature_key,
)

ADMIN_UID = 2
CONNECTOR_UID = 6
_NOW = "2025-01-01 00:00:00"


@dataclass(frozen=True)
class Accounts:
    """The users the sandbox starts with and their secrets."""

    admin_login: str
    admin_password: str
    admin_api_key: str
    connector_login: str
    connector_password: str
    connector_api_key: str


def seed(db: Database, registry: Registry, accounts: Accounts) -> None:
    """Fill an empty database with the records every Odoo with mrp and stock has."""
    version = registry.version
    groups_field = registry.groups_field
    _insert(
        db,
        "res.company",
        1,
        name="YourCompany",
        **{feature_key(ROUTINGS): True, feature_key(LOTS): True},
    )
    for group in GROUPS:
        _insert(db, "res.groups", group.id, name=group.display_name.rsplit("/", 1)[-1])
    admin_groups = [
        registry.group_ids[g]
        for g in (
            USER,
            ERP_MANAGER,
            SYSTEM,
            PRODUCT_CREATION,
            STOCK_USER,
            STOCK_MANAGER,
            MRP_USER,
            MRP_MANAGER,
        )
    ]
    connector_groups = [registry.group_ids[g] for g in (USER, STOCK_USER, MRP_USER)]
    _insert(
        db,
        "res.users",
        1,
        name="OdooBot",
        login="__system__",
        active=False,
        company_id=1,
        **{groups_field: []},
    )
    _insert(
        db,
        "res.users",
        ADMIN_UID,
        name="Mitchell Admin",
        login=accounts.admin_login,
        # As in the verified 18.0 demo database: imports read naive times in this zone.
        tz="Europe/Brussels",
        password=accounts.admin_password,
        active=True,
        company_id=1,
        **{groups_field: admin_groups},
    )
    _insert(
        db,
        "res.users",
        CONNECTOR_UID,
        name="Plant connector",
        login=accounts.connector_login,
        # As in the verified 18.0 demo database: imports read naive times in this zone.
        tz="Europe/Brussels",
        password=accounts.connector_password,
        active=True,
        company_id=1,
        **{groups_field: connector_groups},
    )
    _insert(
        db,
        "res.users.apikeys",
        1,
        name="sandbox admin",
        user_id=ADMIN_UID,
        _key=accounts.admin_api_key,
    )
    _insert(
        db,
        "res.users.apikeys",
        2,
        name="plant connector",
        user_id=CONNECTOR_UID,
        _key=accounts.connector_api_key,
    )
    _seed_units(db, version)
    _insert(db, "product.category", ALL_PRODUCTS, name="All")
    _insert(db, "product.category", 2, name="Saleable", parent_id=ALL_PRODUCTS)
    _insert(db, "product.category", 3, name="Expenses", parent_id=ALL_PRODUCTS)
    _seed_locations(db, version)
    _seed_losses(db)
    _seed_external_ids(db, version)


def _insert(db: Database, table: str, record_id: int, **values: Any) -> None:
    values.setdefault("create_date", _NOW)
    values.setdefault("write_date", _NOW)
    db.insert(table, values, record_id=record_id)


def _seed_units(db: Database, version: int) -> None:
    for record_id, _, name in units.category_rows(version):
        _insert(db, "uom.category", record_id, name=name)
    for record_id, _, values in units.unit_rows(version):
        _insert(db, "uom.uom", record_id, **values)


def _seed_locations(db: Database, version: int) -> None:
    locations: list[tuple[int, str, str, int | None]] = [
        (1, "Physical Locations", "view", None),
        (2, "Partners", "view", None),
        (3, "Virtual Locations", "view", None),
        (4, "Vendors", "supplier", 2),
        (5, "Customers", "customer", 2),
        (7, "WH", "view", 1),
        (STOCK_LOCATION, "Stock", "internal", 7),
        (INVENTORY_LOCATION, "Inventory adjustment", "inventory", 3),
        (PRODUCTION_LOCATION, "Production", "production", 3),
        (SCRAP_LOCATION, "Scrap", "inventory", 3),
    ]
    for record_id, name, usage, parent in locations:
        values: dict[str, Any] = {
            "name": name,
            "usage": usage,
            "location_id": parent,
            "active": True,
            "company_id": 1,
        }
        if version <= 18:
            values["scrap_location"] = record_id == SCRAP_LOCATION
        if record_id == STOCK_LOCATION:
            values["barcode"] = "WHSTOCK"
        if record_id == VENDOR_LOCATION and version >= 19:
            values["location_id"] = None  # 19 names it "Vendors", not "Partners/Vendors"
        _insert(db, "stock.location", record_id, **values)
    _seed_picking_types(db)
    _insert(
        db,
        "stock.warehouse",
        WAREHOUSE,
        name="YourCompany",
        code="WH",
        company_id=1,
        view_location_id=7,
        lot_stock_id=STOCK_LOCATION,
        manufacture_steps="mrp_one_step",
        manu_type_id=MANUFACTURING_TYPE,
        active=True,
    )
    _insert(
        db,
        "stock.picking.type",
        MANUFACTURING_TYPE,
        name="Manufacturing",
        code="mrp_operation",
        sequence_code="MO",
        warehouse_id=WAREHOUSE,
        company_id=1,
        default_location_src_id=STOCK_LOCATION,
        default_location_dest_id=STOCK_LOCATION,
        create_backorder="ask",
        use_create_lots=True,
        use_existing_lots=True,
        active=True,
    )


def _seed_picking_types(db: Database) -> None:
    """Receipts and Internal Transfers (archived, as without the multi-location setting)."""
    common = {"warehouse_id": WAREHOUSE, "company_id": 1, "create_backorder": "ask"}
    _insert(
        db,
        "stock.picking.type",
        RECEIPT_TYPE,
        name="Receipts",
        code="incoming",
        sequence_code="IN",
        default_location_src_id=VENDOR_LOCATION,
        default_location_dest_id=STOCK_LOCATION,
        use_create_lots=True,
        use_existing_lots=False,
        active=True,
        **common,
    )
    _insert(
        db,
        "stock.picking.type",
        INTERNAL_TYPE,
        name="Internal Transfers",
        code="internal",
        sequence_code="INT",
        default_location_src_id=STOCK_LOCATION,
        default_location_dest_id=STOCK_LOCATION,
        use_create_lots=False,
        use_existing_lots=True,
        active=False,
        **common,
    )


def _seed_losses(db: Database) -> None:
    losses = [
        (1, "Material Availability", "availability"),
        (2, "Equipment Failure", "availability"),
        (3, "Setup and Adjustments", "availability"),
        (PERFORMANCE_LOSS, "Reduced Speed", "performance"),
        (5, "Process Defect", "quality"),
        (6, "Reduced Yield", "quality"),
        (PRODUCTIVE_LOSS, "Fully Productive Time", "productive"),
    ]
    for record_id, name, loss_type in losses:
        _insert(
            db,
            "mrp.workcenter.productivity.loss",
            record_id,
            name=name,
            sequence=record_id,
            manual=loss_type == "availability",
            loss_type=loss_type,
        )


def _seed_external_ids(db: Database, version: int) -> None:
    references = [
        ("base", "main_company", "res.company", 1),
        ("base", "user_root", "res.users", 1),
        ("base", "user_admin", "res.users", ADMIN_UID),
        ("stock", "stock_location_stock", "stock.location", STOCK_LOCATION),
        ("stock", "stock_location_suppliers", "stock.location", VENDOR_LOCATION),
        ("stock", "picking_type_in", "stock.picking.type", RECEIPT_TYPE),
        ("stock", "picking_type_internal", "stock.picking.type", INTERNAL_TYPE),
        ("stock", "location_inventory", "stock.location", INVENTORY_LOCATION),
        ("stock", "location_production", "stock.location", PRODUCTION_LOCATION),
        ("stock", "stock_location_scrapped", "stock.location", SCRAP_LOCATION),
        ("stock", "warehouse0", "stock.warehouse", WAREHOUSE),
        ("mrp", "block_reason4", "mrp.workcenter.productivity.loss", PERFORMANCE_LOSS),
        ("mrp", "block_reason7", "mrp.workcenter.productivity.loss", PRODUCTIVE_LOSS),
    ]
    references += [
        (group.xmlid.split(".")[0], group.xmlid.split(".")[1], "res.groups", group.id)
        for group in GROUPS
    ]
    references += [("uom", name, "uom.uom", i) for i, name, _ in units.unit_rows(version)]
    references += [("uom", name, "uom.category", i) for i, name, _ in units.category_rows(version)]
    references += [
        ("product", "product_category_all", "product.category", ALL_PRODUCTS),
        ("product", "product_category_1", "product.category", 2),
        ("product", "cat_expense", "product.category", 3),
    ]
    for index, (module, name, model, res_id) in enumerate(references, start=1):
        _insert(
            db,
            "ir.model.data",
            index,
            module=module,
            name=name,
            model=model,
            res_id=res_id,
            noupdate=True,
        )
