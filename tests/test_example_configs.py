"""The example configuration files load and document every option of both programs."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

import agent.config
import cloud_relay.config

ROOT = Path(__file__).resolve().parent.parent


def models_below(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model reachable from ``model``'s fields, keyed by a dotted path."""
    found: dict[str, type[BaseModel]] = {}

    def visit(path: str, cls: type[BaseModel]) -> None:
        found[path] = cls
        for name, field in cls.model_fields.items():
            for arg in _leaf_types(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    visit(f"{path}.{name}" if path else name, arg)

    visit("", model)
    return found


def _leaf_types(annotation: object) -> list[object]:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for arg in args for leaf in _leaf_types(arg)]


def documented_keys(text: str) -> set[str]:
    """Keys set or shown commented out (``# key = …``), and the names of tables (``[a.b]``)."""
    keys = set(re.findall(r"^\s*#?\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", text, flags=re.M))
    for table in re.findall(r"^\s*#?\s*\[\[?([A-Za-z0-9_.]+)\]\]?", text, flags=re.M):
        keys.update(table.split("."))
    return keys


@pytest.mark.parametrize(
    ("path", "settings", "load"),
    [
        ("config/agent.example.toml", agent.config.AgentSettings, agent.config.load_settings),
        (
            "config/relay.example.toml",
            cloud_relay.config.RelaySettings,
            cloud_relay.config.load_settings,
        ),
    ],
)
def test_example_loads_and_documents_every_option(
    path: str, settings: type[BaseModel], load: typing.Callable[[Path], object]
) -> None:
    example = ROOT / path
    load(example)
    keys = documented_keys(example.read_text())
    missing = sorted(
        f"{where or '(top)'}.{name}"
        for where, model in models_below(settings).items()
        for name in model.model_fields
        if name not in keys and where != ""
    )
    assert not missing, f"{path} does not document: {missing}"
