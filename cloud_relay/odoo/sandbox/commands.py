"""Odoo's x2many write commands: ``(0,0,vals)`` create, ``(1,id,vals)`` update, ``(2,id)`` delete,
``(3,id)`` unlink, ``(4,id)`` link, ``(5,)`` unlink all, ``(6,0,ids)`` replace.

On a one2many, ``3`` and ``5`` only clear the inverse many2one of the related records: they
stay in the database, detached, exactly as Odoo leaves them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.errors import PythonValueError
from cloud_relay.odoo.sandbox.fields import Field

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.orm import Model


def normalize(value: Any) -> list[tuple[Any, ...]]:
    """Commands as tuples; a plain list of ids means ``(6, 0, ids)``."""
    if value is False or value is None:
        return [(5,)]
    if not isinstance(value, list | tuple):
        raise PythonValueError(f"Wrong value for an x2many field: {value!r}")
    if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [(6, 0, list(value))]
    result = []
    for command in value:
        if not isinstance(command, list | tuple) or not command:
            raise PythonValueError(f"Invalid x2many command {command!r}")
        result.append(tuple(command))
    return result


def apply(model: Model, record_id: int, name: str, spec: Field, value: Any) -> None:
    """Run the commands in ``value`` on field ``name`` of record ``record_id``."""
    related = model.env[spec.relation]
    for command in normalize(value):
        if spec.kind == "one2many":
            _one2many(model, record_id, spec, related, command)
        else:
            _many2many(model, record_id, name, related, command)


def _one2many(
    model: Model, record_id: int, spec: Field, related: Model, command: tuple[Any, ...]
) -> None:
    code = command[0]
    inverse = spec.inverse
    if code == 0:
        related.create_records([{**_vals(command), inverse: record_id}])
    elif code == 1:
        related.update(related.check_ids([command[1]]), _vals(command))
    elif code == 2:
        related.remove(related.check_ids([command[1]]))
    elif code == 3:
        related.update(related.check_ids([command[1]]), {inverse: False})
    elif code == 4:
        related.update(related.check_ids([command[1]]), {inverse: record_id})
    elif code == 5:
        related.update(_children(model, record_id, spec, related), {inverse: False})
    elif code == 6:
        wanted = related.check_ids(list(command[2]))
        stale = [i for i in _children(model, record_id, spec, related) if i not in wanted]
        related.update(stale, {inverse: False})
        related.update(wanted, {inverse: record_id})
    else:
        raise PythonValueError(f"Invalid x2many command {list(command)!r}")


def _children(model: Model, record_id: int, spec: Field, related: Model) -> list[int]:
    return related.search_ids([[spec.inverse, "=", record_id]])


def _many2many(
    model: Model, record_id: int, name: str, related: Model, command: tuple[Any, ...]
) -> None:
    code = command[0]
    ids = list(model.row(record_id).get(name) or [])
    if code == 0:
        ids.append(related.new(_vals(command)))
    elif code == 1:
        related.update(related.check_ids([command[1]]), _vals(command))
    elif code == 2:
        related.remove(related.check_ids([command[1]]))
        ids = [i for i in ids if i != command[1]]
    elif code == 3:
        ids = [i for i in ids if i != command[1]]
    elif code == 4:
        ids += [i for i in related.check_ids([command[1]]) if i not in ids]
    elif code == 5:
        ids = []
    elif code == 6:
        ids = related.check_ids(list(command[2]))
    else:
        raise PythonValueError(f"Invalid x2many command {list(command)!r}")
    model.env.db.update(model._name, record_id, {name: ids})


def _vals(command: tuple[Any, ...]) -> dict[str, Any]:
    vals = command[2] if len(command) > 2 else {}
    if not isinstance(vals, dict):
        raise PythonValueError(f"Invalid x2many command values {vals!r}")
    return vals
