"""The Odoo models the sandbox implements: those a manufacturing connector's flows touch."""

from __future__ import annotations

from cloud_relay.odoo.sandbox.models.bom import Bom, BomLine, Operation
from cloud_relay.odoo.sandbox.models.category import ProductCategory
from cloud_relay.odoo.sandbox.models.ir_model_data import ModelData
from cloud_relay.odoo.sandbox.models.location import (
    Location,
    PickingType,
    ProcurementGroup,
    Warehouse,
)
from cloud_relay.odoo.sandbox.models.lot import Lot
from cloud_relay.odoo.sandbox.models.move import Move
from cloud_relay.odoo.sandbox.models.move_line import MoveLine
from cloud_relay.odoo.sandbox.models.picking import Picking
from cloud_relay.odoo.sandbox.models.product import Product, ProductTemplate, Uom, UomCategory
from cloud_relay.odoo.sandbox.models.production import Production
from cloud_relay.odoo.sandbox.models.quant import Quant
from cloud_relay.odoo.sandbox.models.scrap import InsufficientQuantityScrap, Scrap
from cloud_relay.odoo.sandbox.models.settings import Settings
from cloud_relay.odoo.sandbox.models.users import ApiKey, ApiKeyDescription, Company, Group, User
from cloud_relay.odoo.sandbox.models.wizards import (
    Backorder,
    BackorderLine,
    ConsumptionWarning,
    ConsumptionWarningLine,
)
from cloud_relay.odoo.sandbox.models.workcenter import Productivity, ProductivityLoss, Workcenter
from cloud_relay.odoo.sandbox.models.workorder import Workorder
from cloud_relay.odoo.sandbox.orm import Model

MODEL_CLASSES: list[type[Model]] = [
    Company,
    Group,
    User,
    ApiKey,
    ApiKeyDescription,
    Settings,
    ModelData,
    UomCategory,
    Uom,
    ProductCategory,
    ProductTemplate,
    Product,
    Location,
    Warehouse,
    PickingType,
    ProcurementGroup,
    Lot,
    Quant,
    Picking,
    Move,
    MoveLine,
    Bom,
    BomLine,
    Operation,
    Workcenter,
    ProductivityLoss,
    Productivity,
    Production,
    Workorder,
    Backorder,
    BackorderLine,
    ConsumptionWarning,
    ConsumptionWarningLine,
    Scrap,
    InsufficientQuantityScrap,
]

__all__ = ["MODEL_CLASSES"]
