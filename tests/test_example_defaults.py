"""A value the agent's example file shows is the default, unless its comment marks it otherwise.

The file says "values shown are the defaults": an operator who copies it keeps every value it
shows, so a shown value that differs from the model's default (a ``rollover_max`` that the
agent does not assume, say) changes behaviour while claiming not to. Values that must be given
are marked ``Required``; illustrations are marked ``Example``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

import agent.config
from tests.test_example_configs import models_below

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config/agent.example.toml"
_MARKER = re.compile(r"\b(Required|Example)\b")
_TABLE = re.compile(r"^\[\[?([A-Za-z0-9_.]+)\]\]?\s*$")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)$")


def shown_values(text: str) -> list[tuple[str, str, str, bool, int]]:
    """(table, key, value text, marked, line number) of every uncommented ``key = value``.

    A sub-table that is the value of a field (``[mqtt.subscriptions.static]``) counts as one
    key of its parent table, marked by the comments above its header.
    """
    found: list[tuple[str, str, str, bool, int]] = []
    table, comments, table_marked = "", "", False
    models = models_below(agent.config.AgentSettings)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            comments += line + "\n"
            continue
        if not line:
            comments = ""
            continue
        header = _TABLE.match(line)
        if header:
            path = header.group(1)
            if path in models:
                table, table_marked = path, False
            else:
                parent, _, key = path.rpartition(".")
                marked = bool(_MARKER.search(comments))
                found.append((parent, key, "{}", marked, number))
                table, table_marked = path, True
            comments = ""
            continue
        pair = _KEY.match(line)
        if pair and not table_marked:
            marked = bool(_MARKER.search(comments))
            found.append((table, pair.group(1), pair.group(2), marked, number))
        comments = ""
    return found


def _default(model: type[BaseModel], key: str) -> Any:
    return model.model_fields[key].get_default(call_default_factory=True)


def test_every_shown_value_is_the_default_or_marked() -> None:
    models = models_below(agent.config.AgentSettings)
    wrong = []
    for table, key, value_text, marked, number in shown_values(EXAMPLE.read_text()):
        if marked:
            continue
        model = models[table]
        field = model.model_fields[key]
        if value_text == "{}":
            wrong.append(f"line {number}: [{table}.{key}] is shown but not marked Example")
            continue
        if field.is_required():
            wrong.append(f"line {number}: {table}.{key} is required but not marked Required")
            continue
        value = tomllib.loads(f"v = {value_text}")["v"]
        shown = TypeAdapter(field.annotation).validate_python(value)
        if shown != _default(model, key):
            wrong.append(
                f"line {number}: {table}.{key} = {value_text} but the default is "
                f"{_default(model, key)!r}; show the default or mark the line Example"
            )
    assert not wrong, "\n".join(wrong)


def test_the_scan_sees_the_counter_options() -> None:
    keys = {(t, k) for t, k, *_ in shown_values(EXAMPLE.read_text())}
    assert ("opcua.nodes", "rollover_window") in keys
    assert ("opcua", "reconnect_max_seconds") in keys
