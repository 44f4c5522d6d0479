"""The model base class: Odoo's create/write/read/search/unlink semantics over the sandbox db.

Models subclass ``Model``, declare their fields per version and override the hooks
(``_prepare_create``, ``_after_create``, ``_before_write``, ``_after_write``,
``_before_unlink``, ``_check``, ``recompute``). Methods callable over RPC carry ``@public``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from cloud_relay.odoo.sandbox import commands, domain, searching, values
from cloud_relay.odoo.sandbox.db import Row
from cloud_relay.odoo.sandbox.domain_parse import compile_domain
from cloud_relay.odoo.sandbox.env import Env
from cloud_relay.odoo.sandbox.errors import (
    InvalidTextRepresentation,
    MissingError,
    PythonValueError,
    ValidationError,
)
from cloud_relay.odoo.sandbox.fields import (
    ALL_VERSIONS,
    Field,
    char,
    datetime_field,
    many2one,
    scalar_to_read,
)
from cloud_relay.odoo.sandbox.load import load_rows
from cloud_relay.odoo.sandbox.pycall import python
from cloud_relay.odoo.sandbox.query import parse_order
from cloud_relay.odoo.sandbox.security import check_access

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class PublicMethod:
    """How a method may be called remotely: on ids or on the model, and the rights it needs."""

    on_records: bool
    access: tuple[str, ...]
    versions: frozenset[int]
    must_exist: bool = True
    """Whether the ids must exist before the method runs (MissingError otherwise)."""


def public(
    *,
    records: bool = True,
    access: tuple[str, ...] = ("read",),
    versions: frozenset[int] = ALL_VERSIONS,
    must_exist: bool = True,
) -> Callable[[F], F]:
    """Mark a method callable over RPC (``records``: its first argument is a list of ids)."""

    def mark(func: F) -> F:
        spec = PublicMethod(records, access, versions, must_exist)
        func._public = spec  # type: ignore[attr-defined]
        return func

    return mark


def public_method(cls: type[Model], name: str, version: int) -> PublicMethod | None:
    """The RPC description of ``cls.name``, or None if it is not callable remotely."""
    func = getattr(cls, name, None)
    spec = getattr(func, "_public", None)
    if not isinstance(spec, PublicMethod) or version not in spec.versions:
        return None
    return spec


_BASE_METHODS = frozenset({"read", "search", "search_read", "search_count", "load"})


def odoo_qualname(cls: type[Model], name: str) -> str:
    """The ``__qualname__`` of Odoo's implementation (CPython names it in argument errors)."""
    if name == "create":
        return "create"
    if name in _BASE_METHODS:
        return f"BaseModel.{name}"
    return f"{cls.odoo_class()}.{name}"


class Model:
    """One Odoo model bound to an environment."""

    _name: ClassVar[str] = ""
    _description: ClassVar[str] = ""
    _order: ClassVar[str] = "id"
    _rec_name: ClassVar[str] = "name"
    _inherits: ClassVar[dict[str, str]] = {}
    _indexed: ClassVar[tuple[str, ...]] = ()
    _versions: ClassVar[frozenset[int]] = ALL_VERSIONS
    _parent_name: ClassVar[str] = ""
    _inverses: ClassVar[dict[str, str]] = {}
    """Computed fields that may be written: field -> method ``(ids, value)`` applying it."""
    _odoo_class: ClassVar[str] = ""
    """Name of Odoo's Python class when it is not the model name in CamelCase."""
    _orders: ClassVar[dict[int, str]] = {}
    """``_order`` of the versions where it differs from ``_order``."""
    _delegated: ClassVar[dict[str, str]] = {}
    """Fields Odoo stores on a delegated record: field -> the many2one leading there (SQL)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.fields = env.registry.fields(self._name)

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        """The model's own fields for ``version`` (override, then add ``super()``'s)."""
        return {
            "display_name": char("Display Name", compute=_display_name),
            "create_date": datetime_field("Created on"),
            "write_date": datetime_field("Last Updated on"),
            "create_uid": many2one("res.users", "Created by"),
            "write_uid": many2one("res.users", "Last Updated by"),
        }

    def default_order(self) -> str:
        """The model's ``_order`` in this version."""
        return self._orders.get(self.env.version, self._order)

    @classmethod
    def odoo_class(cls) -> str:
        """The name of Odoo's Python class for the model (``MrpProduction``)."""
        return cls._odoo_class or "".join(part.capitalize() for part in cls._name.split("."))

    # -- lookups ----------------------------------------------------------------------------

    def row(self, record_id: int) -> Row:
        """The stored row (MissingError if there is none)."""
        row = self.env.db.get(self._name, record_id)
        if row is None:
            raise MissingError.for_records(self._name, [record_id], self.env.uid)
        return row

    def row_or_none(self, record_id: int) -> Row | None:
        """The stored row, or None."""
        return self.env.db.get(self._name, record_id)

    def get(self, record_id: int, name: str) -> Any:
        """The value of a field of a record, in stored form."""
        return self.value(self.row(record_id), name)

    def value(self, row: Row, name: str) -> Any:
        """A field's value in stored form: ids for relations, None for empty."""
        if name == "id":
            return row["id"]
        spec = self.fields[name]
        if spec.via:
            parent_id = row.get(spec.via)
            if not parent_id:
                return spec.empty()
            return self.env[spec.owner].get(parent_id, name)
        if spec.compute is not None:
            return spec.compute(self, row)
        if spec.kind == "one2many":
            related = [[spec.inverse, "=", row["id"]], *spec.domain]
            return self.env.sudo()[spec.relation].search_ids(related)
        return row.get(name, spec.empty())

    def display_name(self, record_id: int) -> str:
        """How Odoo names the record in a many2one ``[id, name]`` pair."""
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        name = self.value(row, self._rec_name) if self._rec_name in self.fields else None
        return str(name) if name else f"{self._name},{record_id}"

    def hierarchy(self, ids: Iterable[int], down: bool = True) -> set[int]:
        """``ids`` with their descendants (``down``) or ancestors, along ``_parent_name``."""
        found = set(ids)
        if not self._parent_name:
            return found
        if not down:
            pending = list(found)
            while pending:
                row = self.row_or_none(pending.pop())
                parent = row.get(self._parent_name) if row else None
                if parent and parent not in found:
                    found.add(parent)
                    pending.append(parent)
            return found
        changed = True
        while changed:
            changed = False
            for record_id in self.env.db.all_ids(self._name):
                row = self.row(record_id)
                if record_id not in found and row.get(self._parent_name) in found:
                    found.add(record_id)
                    changed = True
        return found

    def check_access(self, operation: str) -> None:
        """Raise AccessError unless the user may do ``operation`` on this model."""
        if not self.env.su:
            check_access(self.env.groups(), self._name, self._description, operation)

    def check_ids(self, ids: Any, *, must_exist: bool = True) -> list[int]:
        """Ids given over RPC, taken as Odoo's ``browse`` takes them (a falsy value is none, a
        bare integer one id, anything else is iterated), then checked as SQL would check them:
        integers or integer text only, and existing unless reading."""
        if not ids:
            given: list[Any] = []
        elif type(ids) is int:
            given = [ids]
        else:
            given = list(python(tuple, ids))
        result = []
        for value in given:
            python(hash, value)
            if value is None:
                continue
            integral = isinstance(value, float) and value.is_integer()
            if integral or (isinstance(value, str) and value.strip().lstrip("+-").isdigit()):
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidTextRepresentation.for_id(self._name.replace(".", "_"), value)
            result.append(value)
        if must_exist:
            missing = [i for i in result if not self.env.db.exists(self._name, i)]
            if missing:
                raise MissingError.for_records(self._name, missing, self.env.uid)
        return result

    # -- RPC face ------------------------------------------------------------------------------

    @public(records=False, access=("create",))
    def create(self, vals_list: Any) -> int | list[int]:
        """Create records; one dict gives one id, a list of dicts a list of ids."""
        if isinstance(vals_list, Mapping):
            return self.create_records([vals_list])[0]
        if not isinstance(vals_list, list):
            raise PythonValueError(f"Wrong values for {self._name}.create: {vals_list!r}")
        return self.create_records(vals_list)

    @public(access=("write",))
    def write(self, ids: list[int], vals: Mapping[str, Any]) -> bool:
        """Write ``vals`` on the records."""
        self.update(ids, vals)
        return True

    @public(access=("unlink",))
    def unlink(self, ids: list[int]) -> bool:
        """Delete the records."""
        self.remove(ids)
        return True

    @public(must_exist=False)
    def read(self, ids: list[int], fields: Any = None, load: str = "_classic_read") -> Any:
        """Read fields of the records; ids that do not exist are left out, without error."""
        del load
        names = searching.read_names(self, ids, fields)
        self.check_rule(ids)
        return self.read_records(ids, names)

    @public(records=False)
    def search(self, domain: Any, offset: Any = 0, limit: Any = None, order: Any = None) -> Any:
        """Ids of the records matching ``domain``."""
        return searching.search(self, domain, offset, limit, order)

    @public(records=False)
    def search_read(
        self,
        domain: Any = None,
        fields: Any = None,
        offset: Any = 0,
        limit: Any = None,
        order: Any = None,
    ) -> Any:
        """Search then read, in one call."""
        return searching.search_read(self, domain, fields, offset, limit, order)

    @public(records=False)
    def search_count(self, domain: Any, limit: Any = None) -> Any:
        """How many records match ``domain``."""
        return searching.search_count(self, domain, limit)

    @public(records=False, access=("create",))
    def load(self, fields: list[str], data: list[list[Any]]) -> dict[str, Any]:
        """Import rows, binding external ids in the same transaction (an upsert by id)."""
        return load_rows(self, fields, data)

    # -- internal CRUD -----------------------------------------------------------------------

    def new(self, vals: Mapping[str, Any]) -> int:
        """Create one record (hooks run, no access check) and return its id."""
        return self.create_records([vals])[0]

    def create_records(self, vals_list: Iterable[Mapping[str, Any]]) -> list[int]:
        """Create records as Odoo's ``create`` does and return their ids."""
        ids = []
        for raw in vals_list:
            values.check_field_names(self, raw)
            stored, parents, relational, inverses = values.split_values(self, raw)
            for name, spec in self.fields.items():
                if spec.stored and name not in stored and name not in relational:
                    stored[name] = values.default_value(self, spec, stored)
            stored["create_date"] = stored["write_date"] = self.env.now()
            stored["create_uid"] = stored["write_uid"] = self.env.uid
            stored = self._prepare_create(stored)
            for parent, link in self._inherits.items():
                if not stored.get(link):
                    stored[link] = self.env[parent].new(parents)
                elif parents:
                    self.env[parent].update([stored[link]], parents)
            self._check(stored)
            values.check_required(self, stored)
            record_id = self.env.db.insert(self._name, stored)
            for name, value in relational.items():
                commands.apply(self, record_id, name, self.fields[name], value)
            for name, value in inverses.items():
                getattr(self, self._inverses[name])([record_id], value)
            self._after_create(record_id, raw)
            self._touch([record_id])
            ids.append(record_id)
        return ids

    def update(self, ids: list[int], vals: Mapping[str, Any]) -> None:
        """Write values on records as Odoo's ``write`` does."""
        if not ids:
            return
        values.check_field_names(self, vals)
        vals = self._before_write(ids, dict(vals))
        stored, parents, relational, inverses = values.split_values(self, vals)
        stored["write_date"] = self.env.now()
        stored["write_uid"] = self.env.uid
        for record_id in ids:
            row = self.row(record_id)
            new_row = {**row, **stored}
            self._check(new_row)
            values.check_required(self, new_row)
            self.env.db.update(self._name, record_id, stored)
            for parent, link in self._inherits.items():
                if parents and row.get(link):
                    self.env[parent].update([row[link]], parents)
            for name, value in relational.items():
                commands.apply(self, record_id, name, self.fields[name], value)
        for name, value in inverses.items():
            getattr(self, self._inverses[name])(ids, value)
        self._after_write(ids, vals)
        self._touch(ids)

    def remove(self, ids: list[int]) -> None:
        """Delete records."""
        self._before_unlink(ids)
        self._touch(ids)
        for record_id in ids:
            if self.env.db.exists(self._name, record_id):
                self.env.db.delete(self._name, record_id)

    def search_ids(
        self,
        filters: list[Any] | None = None,
        offset: int = 0,
        limit: int | None = None,
        order: str | None = None,
    ) -> list[int]:
        """Ids of records matching a domain, sorted and sliced (for the sandbox's own use)."""
        tree = compile_domain(self, filters or [])
        return searching.search_tree(self, tree, parse_order(self, order), offset, limit)

    def rule_tree(self) -> domain.Tree | None:
        """The record rule limiting what the user sees of the model (None: everything)."""
        return None

    def check_rule(self, ids: list[int]) -> None:
        """Raise Odoo's AccessError if a record rule hides one of ``ids`` from the user."""

    def read_records(self, ids: list[int], names: list[str] | None) -> list[dict[str, Any]]:
        """Rows as JSON-RPC ``read`` answers them; missing ids are left out."""
        self.env.flush()
        wanted = values.check_field_names(self, names or []) if names else self.readable_fields()
        result = []
        for record_id in ids:
            row = self.row_or_none(record_id)
            if row is None:
                continue
            record: dict[str, Any] = {"id": record_id}
            for name in wanted:
                if name != "id":
                    record[name] = self.to_read(row, name)
            result.append(record)
        return result

    def readable_fields(self) -> list[str]:
        """Field names answered when a read names none."""
        return list(self.fields)

    def to_read(self, row: Row, name: str) -> Any:
        """One field of a row in JSON-RPC form."""
        spec = self.fields[name]
        value = self.value(row, name)
        if spec.kind == "many2one":
            if not value:
                return False
            return [value, self.env.sudo()[spec.relation].display_name(value)]
        if spec.kind in ("one2many", "many2many"):
            return list(value or [])
        return scalar_to_read(spec, value)

    # -- hooks --------------------------------------------------------------------------------

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        """Fill computed stored fields before insertion (Odoo's precompute)."""
        return vals

    def _after_create(self, record_id: int, vals: Mapping[str, Any]) -> None:
        """Side effects of a creation (related records, reservations...)."""

    def _before_write(self, ids: list[int], vals: dict[str, Any]) -> dict[str, Any]:
        """Check or adapt the values about to be written."""
        return vals

    def _after_write(self, ids: list[int], vals: Mapping[str, Any]) -> None:
        """Side effects of a write."""

    def _before_unlink(self, ids: list[int]) -> None:
        """Side effects of a deletion (unreserving, cascading)."""

    def _check(self, row: Mapping[str, Any]) -> None:
        """SQL and Python constraints on a row about to be stored (raise ValidationError)."""

    def _touch(self, ids: list[int]) -> None:
        """Queue the records whose derived fields depend on these (called on every change)."""

    def recompute(self, ids: list[int]) -> None:
        """Recompute derived stored fields of ``ids`` (called by ``env.flush``)."""


def _display_name(model: Model, row: Row) -> str:
    """Compute of the ``display_name`` field every model has."""
    return model.display_name(row["id"])


def sql_constraint(message: str) -> ValidationError:
    """The ValidationError Odoo raises for a named SQL constraint."""
    return ValidationError(f"The operation cannot be completed: {message}")
