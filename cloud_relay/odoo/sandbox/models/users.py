"""Users, groups, the company and API keys (``res.users``, ``res.groups``, ``res.company``,
``res.users.apikeys``, ``res.users.apikeys.description``).

An API key is accepted wherever the password is (``common.authenticate``, ``execute_kw`` and
the JSON-2 bearer header). Keys cannot be made over RPC, as in Odoo 18 (``make_key`` needs an
HTTP session): the sandbox provisions them when it starts.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any, ClassVar

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.domain import Leaf, Tree
from cloud_relay.odoo.sandbox.env import Env
from cloud_relay.odoo.sandbox.errors import (
    AccessError,
    PythonValueError,
    UserError,
    ValidationError,
)
from cloud_relay.odoo.sandbox.fields import DATETIME_FORMAT, Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.orm import Model, public, sql_constraint
from cloud_relay.odoo.sandbox.security import GROUPS_BY_ID, SYSTEM

HTTP_ONLY = "This method can only be accessed over HTTP"
"""What ``@check_identity`` methods answer when called without an HTTP request."""


class Company(Model):
    """``res.company``: one company; it also carries the settings' feature switches."""

    _name = "res.company"
    _description = "Companies"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Company Name", required=True),
            "currency_id": f.integer("Currency", default=1),
        }


class Group(Model):
    """``res.groups``: the groups of ``security.GROUPS``, with their display names."""

    _name = "res.groups"
    _description = "Access Groups"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Name", required=True),
            "full_name": f.char("Group Name", compute=_group_full_name),
        }

    def display_name(self, record_id: int) -> str:
        group = GROUPS_BY_ID.get(record_id)
        return group.display_name if group else super().display_name(record_id)


def _group_full_name(model: Model, row: Any) -> str:
    return model.display_name(row["id"])


class User(Model):
    """``res.users``: login, password, groups (``groups_id``; ``group_ids`` from Odoo 19)."""

    _name = "res.users"
    _description = "User"
    _order = "name, login"
    _indexed = ("login",)
    _odoo_class = "Users"
    _delegated = {"name": "partner_id"}

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        groups_field = "group_ids" if version >= 19 else "groups_id"
        return {
            **super().define_fields(version),
            "name": f.char("Name", required=True),
            "login": f.char("Login", required=True),
            "password": f.char("Password"),
            "active": f.boolean("Active", default=True),
            "company_id": f.many2one("res.company", "Company", default=1),
            "tz": f.char("Timezone"),
            groups_field: f.many2many("res.groups", "Groups"),
        }

    def readable_fields(self) -> list[str]:
        return [name for name in self.fields if name != "password"]

    def to_read(self, row: Any, name: str) -> Any:
        if name == "password":
            return ""
        return super().to_read(row, name)

    def _check(self, row: Any) -> None:
        others = self.env.db.lookup(self._name, "login", row.get("login")) - {row.get("id")}
        if others:
            raise sql_constraint("You can not have two users with the same login !")

    @public()
    def has_group(self, ids: list[int], group_ext_id: str) -> bool:
        """Whether the (single) user is in the group given by external id."""
        if len(ids) != 1:
            raise PythonValueError(f"Expected singleton: res.users{tuple(ids)!r}")
        user_env = Env(self.env.db, self.env.registry, ids[0], clock=self.env.clock)
        return group_ext_id in user_env.groups()

    def find_login(self, login: str) -> int | None:
        """The id of the user with that login, if any."""
        found = sorted(self.env.db.lookup(self._name, "login", login))
        return found[0] if found else None

    def authenticate(self, login: str, password: str) -> int | None:
        """The uid for ``login`` if ``password`` is its password or one of its API keys."""
        for uid in self.env.db.lookup(self._name, "login", login):
            if self.check_credentials(uid, password):
                return uid
        return None

    def check_credentials(self, uid: int, password: Any) -> bool:
        """Whether ``password`` (a password or an API key) opens the active user ``uid``."""
        row = self.env.db.get(self._name, uid)
        if row is None or not row.get("active") or not isinstance(password, str) or not password:
            return False
        if row.get("password") and hmac.compare_digest(str(row["password"]), password):
            return True
        return lookup.api_keys(self.env).owner_of(password) == uid


class ApiKey(Model):
    """``res.users.apikeys``: the key itself is never readable, only its metadata."""

    _name = "res.users.apikeys"
    _description = "Users API Keys"
    _indexed = ("user_id",)
    _odoo_class = "APIKeys"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Description", required=True),
            "user_id": f.many2one("res.users", "User", required=True),
            "scope": f.char("Scope"),
            "expiration_date": f.datetime_field("Expiration Date"),
        }

    def readable_fields(self) -> list[str]:
        return ["name", "scope", "expiration_date", "create_date"]

    def rule_tree(self) -> Tree | None:
        """Users see their own keys; system administrators see every key."""
        if self._sees_all():
            return None
        return Leaf("user_id", "=", self.env.uid, ("user_id", "=", self.env.uid))

    def check_rule(self, ids: list[int]) -> None:
        if self._sees_all():
            return
        for record_id in ids:
            row = self.row_or_none(record_id)
            if row is not None and row.get("user_id") != self.env.uid:
                user = self.env.sudo()["res.users"].display_name(self.env.uid)
                raise AccessError(
                    "Uh-oh! Looks like you have stumbled upon some top-secret records.\n\n"
                    f"Sorry, {user} (id={self.env.uid}) doesn't have 'read' access to:\n"
                    f"- {self._description} ({self._name})\n\n"
                    "If you really, really need access, perhaps you can win over your friendly "
                    "administrator with a batch of freshly baked cookies."
                )

    def _sees_all(self) -> bool:
        return self.env.su or self.env.has_group(SYSTEM)

    @public(must_exist=False)
    def remove(self, ids: list[int]) -> Any:
        """Refused over RPC: removing a key needs the identity check of an HTTP session."""
        del ids
        raise UserError(HTTP_ONLY)

    def provision(self, user_id: int, name: str, key: str) -> int:
        """Store a key for ``user_id`` (what ``odoo-bin shell`` + ``_generate`` does)."""
        record_id = self.new({"name": name, "user_id": user_id})
        self.env.db.update(self._name, record_id, {"_key": key})
        return record_id

    def owner_of(self, key: str) -> int | None:
        """The user a valid (unexpired, rpc-scoped) key belongs to."""
        now = self.env.now()
        for record_id in self.env.db.all_ids(self._name):
            row = self.row(record_id)
            expires = row.get("expiration_date")
            if row.get("scope") not in (None, "rpc") or (expires and expires < now):
                continue
            stored = row.get("_key")
            if isinstance(stored, str) and hmac.compare_digest(stored, key):
                return int(row["user_id"])
        return None


class ApiKeyDescription(Model):
    """``res.users.apikeys.description``: the wizard that names a key before it is made."""

    _name = "res.users.apikeys.description"
    _description = "API Key Description"
    DURATIONS: ClassVar[tuple[str, ...]] = ("0", "1", "7", "30", "90", "180", "365", "-1")

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Description", required=True),
            "duration": f.selection("Duration", cls.DURATIONS, default="0"),
            "expiration_date": f.datetime_field("Expiration Date"),
        }

    def _check(self, row: Any) -> None:
        if row.get("duration") == "-1" and not row.get("expiration_date"):
            raise ValidationError("The API key must have an expiration date")
        expiry = row.get("expiration_date")
        if expiry and expiry < datetime.now().strftime(DATETIME_FORMAT):
            raise ValidationError("The expiration date must be in the future")

    @public(access=("read",), must_exist=False)
    def make_key(self, ids: list[int]) -> Any:
        """Refused over RPC: the identity check needs an HTTP session."""
        del ids
        raise UserError(HTTP_ONLY)
