"""The models of one emulated Odoo version, with their fields resolved for that version."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.security import GROUPS

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.db import Database
    from cloud_relay.odoo.sandbox.orm import Model

SUPPORTED_VERSIONS = (17, 18, 19)


class Registry:
    """Model classes by name and each model's fields as the given version has them."""

    def __init__(self, version: int, classes: list[type[Model]]) -> None:
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"odoo_version must be one of {SUPPORTED_VERSIONS}, not {version}")
        self.version = version
        self.groups_field = "group_ids" if version >= 19 else "groups_id"
        self.group_ids = {group.xmlid: group.id for group in GROUPS}
        self._classes = {cls._name: cls for cls in classes if version in cls._versions}
        self._fields: dict[str, dict[str, Field]] = {}
        for name, cls in self._classes.items():
            own = {
                fname: replace(spec, owner=name)
                for fname, spec in cls.define_fields(version).items()
                if version in spec.versions
            }
            self._fields[name] = own
        for name, cls in self._classes.items():
            for parent, link in cls._inherits.items():
                for fname, spec in self._fields[parent].items():
                    if fname not in self._fields[name] and fname != "id":
                        self._fields[name][fname] = replace(spec, via=link)
        self.recompute_order = [
            name
            for name in ("stock.move", "mrp.workorder", "mrp.production")
            if name in self._classes
        ]

    def has_model(self, name: str) -> bool:
        """Whether the version has the model."""
        return name in self._classes

    def model_class(self, name: str) -> type[Model]:
        """The class implementing ``name`` (KeyError if the version lacks it)."""
        return self._classes[name]

    def fields(self, name: str) -> dict[str, Field]:
        """The fields of ``name``, inherited ones included."""
        return self._fields[name]

    def model_names(self) -> list[str]:
        """Every model of the version."""
        return sorted(self._classes)

    def declare_tables(self, db: Database) -> None:
        """Create a table per model, indexing the fields the model asks for."""
        for name, cls in self._classes.items():
            db.declare(name, cls._indexed)
