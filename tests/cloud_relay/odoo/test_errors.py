"""Sorting Odoo's answers: each ``error.data`` seen from a real Odoo 18.0 lands in one class."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_relay.errors import ConfigError, RejectedError, TransientError
from cloud_relay.odoo.errors import (
    OdooAccessDenied,
    OdooAccessError,
    OdooCallError,
    OdooConcurrencyError,
    OdooConfigError,
    OdooError,
    OdooMissingError,
    OdooRecordNotFound,
    OdooTransientError,
    OdooUnavailableError,
    OdooUserError,
    OdooValidationError,
    error_from_http,
    error_from_odoo,
)

# Messages verbatim from Odoo 18.0 (mrp + stock) answering this project's client.
ACCESS_CREATE_PRODUCT = (
    "You are not allowed to create 'Product Variant' (product.product) records.\n\n"
    "This operation is allowed for the following groups:\n"
    "\t- Extra Rights/Product Creation\n\t- Inventory/Administrator\n"
    "\t- Manufacturing/Administrator\n\n"
    "Contact your administrator to request access if necessary."
)
ACCESS_READ_MO = (
    "You are not allowed to access 'Manufacturing Order' (mrp.production) records.\n\n"
    "This operation is allowed for the following groups:\n"
    "\t- Inventory/User\n\t- Manufacturing/Administrator\n\t- Manufacturing/User\n\n"
    "Contact your administrator to request access if necessary."
)
MISSING_PRODUCT = (
    "Record does not exist or has been deleted.\n(Record: product.product(63,), User: 2)"
)
MANDATORY_FIELD = (
    "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
    "- Delete: another model requires the record being deleted. If possible, archive it "
    "instead.\n\nModel: Manufacturing Order (mrp.production)\nField: Product (product_id)\n"
)
NO_DATABASE = (
    'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nosuchdb" '
    "does not exist\n"
)

CASES = [
    ("odoo.exceptions.UserError", "You can only enter positive quantities.", OdooUserError),
    ("odoo.exceptions.ValidationError", MANDATORY_FIELD, OdooValidationError),
    (
        "odoo.exceptions.ValidationError",
        "The operation cannot be completed: The quantity to produce must be positive!",
        OdooValidationError,
    ),
    ("odoo.exceptions.MissingError", MISSING_PRODUCT, OdooMissingError),
    ("odoo.exceptions.AccessError", ACCESS_CREATE_PRODUCT, OdooAccessError),
    ("odoo.exceptions.AccessDenied", "Access Denied", OdooAccessDenied),
    ("builtins.ValueError", "Invalid field 'no_field' on model 'mrp.production'", OdooCallError),
    ("builtins.ValueError", "Wrong value for mrp.bom.consumption: 'sometimes'", OdooCallError),
    (
        "builtins.AttributeError",
        "The method 'mrp.production.no_such_method' does not exist",
        OdooCallError,
    ),
    ("odoo.exceptions.UserError", "Object mrp.nosuchmodel doesn't exist", OdooCallError),
    (
        "odoo.exceptions.AccessError",
        "Private methods (such as 'res.users.apikeys._generate') cannot be called remotely.",
        OdooCallError,
    ),
    (
        "psycopg2.errors.InvalidTextRepresentation",
        'invalid input syntax for type integer: "abc"',
        OdooCallError,
    ),
    ("psycopg2.OperationalError", NO_DATABASE, OdooConfigError),
    # From the contract (seen live once Odoo's own five tries were used up) and Odoo's source.
    (
        "psycopg2.errors.SerializationFailure",
        "could not serialize access due to concurrent update\n",
        OdooConcurrencyError,
    ),
    ("psycopg2.errors.LockNotAvailable", "could not obtain lock", OdooConcurrencyError),
    ("psycopg2.errors.DeadlockDetected", "deadlock detected", OdooConcurrencyError),
    ("odoo.exceptions.ConcurrencyError", "concurrent update", OdooConcurrencyError),
    ("odoo.exceptions.LockError", "Cannot grab a lock on records", OdooConcurrencyError),
    (
        "psycopg2.OperationalError",
        "server closed the connection unexpectedly",
        OdooUnavailableError,
    ),
    ("werkzeug.exceptions.Unauthorized", "Invalid apikey", OdooAccessDenied),
    ("werkzeug.exceptions.NotFound", "the model 'x' does not exist", OdooCallError),
    ("builtins.KeyError", "nope", OdooCallError),
]


@pytest.mark.parametrize(("name", "message", "expected"), CASES)
def test_each_odoo_exception_sorts_into_one_class(
    name: str, message: str, expected: type[OdooError]
) -> None:
    error = error_from_odoo(
        {"name": name, "message": message, "debug": "Traceback ...\nsecret frame"},
        call="mrp.production.create",
    )
    assert type(error) is expected
    assert error.odoo_name == name
    assert error.odoo_message == message
    assert str(error).startswith(f"mrp.production.create: {name}")
    assert "Traceback" not in str(error)


def test_the_three_roots_tell_the_caller_what_to_do() -> None:
    concurrency = error_from_odoo({"name": "psycopg2.errors.SerializationFailure"})
    assert isinstance(concurrency, TransientError)
    assert isinstance(concurrency, OdooTransientError)
    assert concurrency.may_have_applied is False  # Odoo rolled the transaction back
    user = error_from_odoo({"name": "odoo.exceptions.UserError", "message": "no"})
    assert isinstance(user, RejectedError)
    assert not isinstance(user, TransientError | ConfigError)
    denied = error_from_odoo({"name": "odoo.exceptions.AccessDenied", "message": "Access Denied"})
    assert isinstance(denied, ConfigError)
    assert not isinstance(denied, RejectedError | TransientError)


def test_access_error_names_the_right_model_and_groups() -> None:
    error = error_from_odoo({"name": "odoo.exceptions.AccessError", "message": ACCESS_READ_MO})
    assert isinstance(error, OdooAccessError)
    assert error.right == "read"
    assert error.model == "mrp.production"
    assert error.allowed_groups == (
        "Inventory/User",
        "Manufacturing/Administrator",
        "Manufacturing/User",
    )
    assert "lacks the read right on mrp.production" in str(error)
    assert "Manufacturing/User" in str(error)


def test_access_error_by_record_rule_names_the_right() -> None:
    message = (
        "Uh-oh! Looks like you have stumbled upon some top-secret records.\n\n"
        "Sorry, Plant connector (id=8) doesn't have 'write' access to:\n"
        "- Manufacturing Order (mrp.production)\n\n"
        "If you really, really need access, perhaps you can win over your friendly "
        "administrator with a batch of freshly baked cookies."
    )
    error = error_from_odoo({"name": "odoo.exceptions.AccessError", "message": message})
    assert isinstance(error, OdooAccessError)
    assert (error.right, error.model, error.allowed_groups) == ("write", "mrp.production", ())
    assert error.by_record_rule is True
    assert "lacks the write right on these mrp.production records (record rules)" in str(error)


def test_access_error_that_no_group_grants() -> None:
    # Odoo 18.0, admin unlinking another user's API key.
    message = (
        "You are not allowed to delete 'Users API Keys' (res.users.apikeys) records.\n\n"
        "No group currently allows this operation.\n\n"
        "Contact your administrator to request access if necessary."
    )
    error = error_from_odoo({"name": "odoo.exceptions.AccessError", "message": message})
    assert isinstance(error, OdooAccessError)
    assert (error.right, error.model, error.allowed_groups) == ("unlink", "res.users.apikeys", ())
    assert str(error).endswith("lacks the unlink right on res.users.apikeys; no group grants it")


def test_missing_error_names_model_and_ids() -> None:
    error = error_from_odoo({"name": "odoo.exceptions.MissingError", "message": MISSING_PRODUCT})
    assert isinstance(error, OdooMissingError)
    assert (error.model, error.ids) == ("product.product", (63,))


def test_record_not_found_is_a_rejection_with_odoo_like_text() -> None:
    error = OdooRecordNotFound("mrp.production", "matches [['name', '=', 'WH/MO/9']]")
    assert isinstance(error, RejectedError)
    assert str(error) == "unknown record: no mrp.production matches [['name', '=', 'WH/MO/9']]"
    assert str(error.for_call("mrp.production.search_read")).startswith(
        "mrp.production.search_read: unknown record"
    )


@pytest.mark.parametrize(
    ("status", "expected", "may_have_applied"),
    [
        (503, OdooUnavailableError, False),
        (429, OdooUnavailableError, False),
        (502, OdooUnavailableError, True),
        (504, OdooUnavailableError, True),
        (500, OdooUnavailableError, True),
        (401, OdooAccessDenied, None),
        (404, OdooConfigError, None),
    ],
)
def test_http_answers_without_an_odoo_error(
    status: int, expected: type[OdooError], may_have_applied: bool | None
) -> None:
    error = error_from_http(status, "Reason", call="common.version")
    assert type(error) is expected
    assert f"HTTP {status}" in str(error)
    if may_have_applied is not None:
        assert isinstance(error, OdooTransientError)
        assert error.may_have_applied is may_have_applied


@given(
    name=st.one_of(st.none(), st.text(max_size=60), st.sampled_from([n for n, _, _ in CASES])),
    message=st.one_of(st.none(), st.integers(), st.text(max_size=300)),
)
def test_any_error_object_sorts_into_exactly_one_root(name: object, message: object) -> None:
    error = error_from_odoo({"name": name, "message": message})
    roots = [isinstance(error, root) for root in (TransientError, RejectedError, ConfigError)]
    assert roots.count(True) == 1
    assert isinstance(error.odoo_message, str)
