"""Python's own call errors, as Odoo lets them reach a client.

Odoo passes RPC arguments straight to Python functions, so arguments that do not fit come back
as ``builtins.TypeError`` with CPython's wording ("BaseModel.search() missing 1 required
positional argument: 'domain'"). ``bind`` reproduces that wording for the sandbox's methods;
``python`` runs a builtin (``dict``, ``int``...) and answers its error the way Odoo would.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from cloud_relay.odoo.sandbox.errors import PythonError

T = TypeVar("T")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def type_name(value: Any) -> str:
    """The Python type name of a JSON value (``NoneType``, ``int``, ``str``...)."""
    return type(value).__name__


def python(func: Callable[..., T], *args: Any) -> T:
    """Call a builtin, answering a TypeError, ValueError... as Odoo answers it."""
    try:
        return func(*args)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise PythonError.of(exc) from None


def raise_python(kind: type[BaseException], *arguments: Any) -> NoReturn:
    """Raise the answer Odoo gives for ``kind(*arguments)`` raised in its code."""
    raise PythonError.of(kind(*arguments))


def splat(value: Any, qualname: str, mapping: bool = False) -> Any:
    """``*value`` (or ``**value``) in a call to ``qualname``: CPython's error when it can't be."""
    if mapping:
        if not isinstance(value, dict):
            raise_python(
                TypeError,
                f"{qualname}() argument after ** must be a mapping, not {type_name(value)}",
            )
        return dict(value)
    if isinstance(value, str | list | dict | tuple):
        return list(value)
    raise_python(
        TypeError, f"{qualname}() argument after * must be an iterable, not {type_name(value)}"
    )


def bind(
    qualname: str,
    func: Callable[..., T],
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    implicit: int = 0,
) -> Callable[[], T]:
    """``func`` bound to the arguments, or CPython's TypeError for a call to ``qualname``.

    ``implicit`` counts positional arguments CPython would count but the sandbox does not pass
    (``self`` of an Odoo model method).
    """
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    names = {p.name for p in params if p.kind != inspect.Parameter.VAR_POSITIONAL}
    var_args = any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
    var_kwargs = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)
    filled = {p.name for p in positional[: len(args)]}
    for key in kwargs:
        if key not in names and not var_kwargs:
            raise_python(TypeError, f"{qualname}() got an unexpected keyword argument '{key}'")
        if key in filled:
            raise_python(TypeError, f"{qualname}() got multiple values for argument '{key}'")
    if len(args) > len(positional) and not var_args:
        raise_python(TypeError, _too_many(qualname, positional, len(args), implicit))
    missing = [
        p.name
        for p in positional
        if p.default is inspect.Parameter.empty and p.name not in filled and p.name not in kwargs
    ]
    if missing:
        raise_python(TypeError, _missing(qualname, missing, "positional"))
    keyword_only = [
        p.name
        for p in params
        if p.kind == inspect.Parameter.KEYWORD_ONLY
        and p.default is inspect.Parameter.empty
        and p.name not in kwargs
    ]
    if keyword_only:
        raise_python(TypeError, _missing(qualname, keyword_only, "keyword-only"))
    return lambda: func(*args, **kwargs)


def _too_many(qualname: str, positional: list[inspect.Parameter], given: int, implicit: int) -> str:
    total = len(positional) + implicit
    defaults = sum(1 for p in positional if p.default is not inspect.Parameter.empty)
    takes = f"from {total - defaults} to {total}" if defaults else str(total)
    plural = "s" if total != 1 else ""
    given += implicit
    verb = "was" if given == 1 else "were"
    return f"{qualname}() takes {takes} positional argument{plural} but {given} {verb} given"


def _missing(qualname: str, names: list[str], kind: str) -> str:
    quoted = [f"'{name}'" for name in names]
    if len(quoted) == 1:
        listing = quoted[0]
    elif len(quoted) == 2:
        listing = f"{quoted[0]} and {quoted[1]}"
    else:
        listing = ", ".join(quoted[:-1]) + f", and {quoted[-1]}"
    plural = "s" if len(names) != 1 else ""
    return f"{qualname}() missing {len(names)} required {kind} argument{plural}: {listing}"
