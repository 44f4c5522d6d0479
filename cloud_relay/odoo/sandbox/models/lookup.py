"""Typed access to the sandbox's models from other models, with access rights skipped.

Models call each other's own methods (reserve stock, post moves...); ``env["stock.quant"]``
is only typed as ``Model``, so cross-model calls go through these functions instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.env import Env
    from cloud_relay.odoo.sandbox.models.bom import Bom, BomLine, Operation
    from cloud_relay.odoo.sandbox.models.ir_model_data import ModelData
    from cloud_relay.odoo.sandbox.models.location import Location
    from cloud_relay.odoo.sandbox.models.lot import Lot
    from cloud_relay.odoo.sandbox.models.move import Move
    from cloud_relay.odoo.sandbox.models.move_line import MoveLine
    from cloud_relay.odoo.sandbox.models.product import Product, Uom
    from cloud_relay.odoo.sandbox.models.production import Production
    from cloud_relay.odoo.sandbox.models.quant import Quant
    from cloud_relay.odoo.sandbox.models.scrap import Scrap
    from cloud_relay.odoo.sandbox.models.users import ApiKey, User
    from cloud_relay.odoo.sandbox.models.workorder import Workorder


def boms(env: Env) -> Bom:
    """``mrp.bom``."""
    return cast("Bom", env.sudo()["mrp.bom"])


def bom_lines(env: Env) -> BomLine:
    """``mrp.bom.line``."""
    return cast("BomLine", env.sudo()["mrp.bom.line"])


def operations(env: Env) -> Operation:
    """``mrp.routing.workcenter``."""
    return cast("Operation", env.sudo()["mrp.routing.workcenter"])


def model_data(env: Env) -> ModelData:
    """``ir.model.data``."""
    return cast("ModelData", env.sudo()["ir.model.data"])


def locations(env: Env) -> Location:
    """``stock.location``."""
    return cast("Location", env.sudo()["stock.location"])


def lots(env: Env) -> Lot:
    """``stock.lot``."""
    return cast("Lot", env.sudo()["stock.lot"])


def moves(env: Env) -> Move:
    """``stock.move``."""
    return cast("Move", env.sudo()["stock.move"])


def move_lines(env: Env) -> MoveLine:
    """``stock.move.line``."""
    return cast("MoveLine", env.sudo()["stock.move.line"])


def products(env: Env) -> Product:
    """``product.product``."""
    return cast("Product", env.sudo()["product.product"])


def uoms(env: Env) -> Uom:
    """``uom.uom``."""
    return cast("Uom", env.sudo()["uom.uom"])


def productions(env: Env) -> Production:
    """``mrp.production``."""
    return cast("Production", env.sudo()["mrp.production"])


def quants(env: Env) -> Quant:
    """``stock.quant``."""
    return cast("Quant", env.sudo()["stock.quant"])


def scraps(env: Env) -> Scrap:
    """``stock.scrap``."""
    return cast("Scrap", env.sudo()["stock.scrap"])


def users(env: Env) -> User:
    """``res.users``."""
    return cast("User", env.sudo()["res.users"])


def api_keys(env: Env) -> ApiKey:
    """``res.users.apikeys``."""
    return cast("ApiKey", env.sudo()["res.users.apikeys"])


def workorders(env: Env) -> Workorder:
    """``mrp.workorder``."""
    return cast("Workorder", env.sudo()["mrp.workorder"])
