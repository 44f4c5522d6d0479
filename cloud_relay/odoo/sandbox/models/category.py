"""``product.category``: the tree products are filed in (``All``, ``All / Saleable``...).

A fresh database has ``All`` (id 1, every product's default), ``All / Saleable`` and
``All / Expenses``; a category is named by its full path.
"""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.orm import Model

ALL_PRODUCTS = 1


class ProductCategory(Model):
    """``product.category``: ``parent_id`` makes the tree, ``complete_name`` names a node."""

    _name = "product.category"
    _description = "Product Category"
    _order = "complete_name"
    _rec_name = "complete_name"
    _parent_name = "parent_id"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Name", required=True),
            "complete_name": f.char("Complete Name", compute=_complete_name),
            "parent_id": f.many2one("product.category", "Parent Category"),
            "parent_path": f.char("Parent Path", compute=_parent_path),
            "child_id": f.one2many("product.category", "parent_id", "Child Categories"),
            "product_count": f.integer("# Products", compute=_product_count),
        }

    def path(self, record_id: int) -> list[int]:
        """Ids from the root down to the category."""
        chain: list[int] = []
        current: int | None = record_id
        while current and current not in chain:
            chain.insert(0, current)
            row = self.row_or_none(current)
            current = row.get("parent_id") if row else None
        return chain

    def display_name(self, record_id: int) -> str:
        if self.row_or_none(record_id) is None:
            return ""
        return " / ".join(str(self.get(i, "name")) for i in self.path(record_id))


def _complete_name(model: Model, row: Any) -> str:
    return model.display_name(row["id"])


def _parent_path(model: Model, row: Any) -> str:
    assert isinstance(model, ProductCategory)
    return "".join(f"{i}/" for i in model.path(row["id"]))


def _product_count(model: Model, row: Any) -> int:
    family = sorted(model.hierarchy([row["id"]]))
    templates = model.env.sudo()["product.template"]
    return len(templates.search_ids([["categ_id", "in", family]]))
