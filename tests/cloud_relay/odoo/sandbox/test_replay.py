"""Replay of the live Odoo 18.0 probe (``recordings/odoo-18.0-probe.jsonl`` beside this file,
captured as ``recordings/README.md`` says) against the sandbox over HTTP, in order, comparing
every answer with the recorded one.

Ids differ between the two databases, so requests are rewritten through a map learnt from the
answers (a record created as 165 live and 3 here is 3 in every later request), and every id in
an answer must agree with that map. Strings are compared with digit runs folded (names carry
sequence numbers and dates), floats and other values exactly, error class paths and messages
exactly (digits folded), keys and list lengths exactly.

Recorded calls deliberately not replayed:
- the 12 calls on ``/web/session/authenticate`` and ``/web/dataset/call_kw`` (API-key creation
  through a browser session and the identity check): the sandbox provisions API keys at start,
  as ``odoo-bin shell`` does, and a connector never makes keys;
- ``stock.quant.read_group`` (#303): not part of any connector flow in the contract.

Recorded calls whose values depend on the demo data or earlier probe runs of that database
(compared for shape only: keys, types, and ids against the map):
``res.users.apikeys.search_read`` (#17, keys from earlier runs), ``read`` of demo product 1
(#307), the first product and quant of the demo data (#343, #344), and the count of demo
operations re-activated by the settings (#235).

The recorded "retries used up" call (#384) is replayed with a serialization-failure fault armed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from cloud_relay.odoo.sandbox import FaultRule, Sandbox, SandboxServer
from cloud_relay.odoo.sandbox.orm import public_method

#: Part of the checkout, so a fresh clone replays it with nothing beside it.
RECORDING = Path(__file__).resolve().parent / "recordings" / "odoo-18.0-probe.jsonl"
NOT_REPLAYED = {303}
SHAPE_ONLY = {17, 235, 307, 343, 344}
SERIALIZATION_FAULT = {384}
LOOSE_FLOATS = {"duration"}
"""Measured durations (minutes): compared by type when the recorded value is under a minute."""
CONTEXT_IDS = {"mo_ids_to_backorder": "mrp.production", "location": "stock.location"}
KEY_MODELS = {
    "product_id": "product.product",
    "mrp_production_id": "mrp.production",
    "mrp_production_ids": "mrp.production",
    "product_uom_id": "uom.uom",
    "location_id": "stock.location",
    "scrap_id": "stock.scrap",
    "always_backorder_mo_ids": "mrp.production",
    "production_id": "mrp.production",
}
_DIGITS = re.compile(r"\d+")


class Replay:
    """Rewrites recorded requests into sandbox ids and checks answers against recordings."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.ids: dict[str, dict[int, int]] = {}

    # -- requests ---------------------------------------------------------------------------

    def to_sandbox(self, model: str, record_id: Any) -> Any:
        if isinstance(record_id, bool) or not isinstance(record_id, int):
            return record_id
        return self.ids.get(model, {}).get(record_id, record_id)

    def translate(self, params: dict[str, Any]) -> dict[str, Any]:
        params = json.loads(json.dumps(params))
        args = params.get("args", [])
        for index, value in enumerate(args):
            if value == "<api-key>":
                args[index] = self.sandbox.accounts.admin_api_key
        if params.get("service") != "object":
            return params
        args[1] = self.to_sandbox("res.users", args[1])
        model, method, call_args = args[3], args[4], args[5]
        kwargs = args[6] if len(args) > 6 else {}
        if not self.sandbox.registry.has_model(model):
            return params
        cls = self.sandbox.registry.model_class(model)
        spec = public_method(cls, method, 18)
        if method == "create":
            values = call_args[0]
            call_args[0] = (
                [self.vals(model, v) for v in values]
                if isinstance(values, list)
                else self.vals(model, values)
            )
        elif method in ("search", "search_read", "search_count"):
            call_args[0] = self.domain(model, call_args[0])
        elif spec is not None and spec.on_records and call_args:
            call_args[0] = [self.to_sandbox(model, i) for i in call_args[0]]
            if method == "write":
                call_args[1] = self.vals(model, call_args[1])
        context = kwargs.get("context", {})
        for key, target in CONTEXT_IDS.items():
            if key in context:
                value = context[key]
                context[key] = (
                    [self.to_sandbox(target, v) for v in value]
                    if isinstance(value, list)
                    else self.to_sandbox(target, value)
                )
        return params

    def vals(self, model: str, values: dict[str, Any]) -> dict[str, Any]:
        fields = self.sandbox.registry.fields(model)
        result = {}
        for name, value in values.items():
            spec = fields.get(name)
            if spec is None or spec.kind not in ("many2one", "one2many", "many2many"):
                result[name] = value
            elif spec.kind == "many2one":
                result[name] = self.to_sandbox(spec.relation, value)
            else:
                result[name] = [self.command(spec.relation, c) for c in value]
        return result

    def command(self, model: str, command: list[Any]) -> list[Any]:
        code = command[0]
        if code == 0:
            return [0, 0, self.vals(model, command[2])]
        if code == 1:
            return [1, self.to_sandbox(model, command[1]), self.vals(model, command[2])]
        if code in (2, 3, 4):
            return [code, self.to_sandbox(model, command[1])]
        if code == 6:
            return [6, 0, [self.to_sandbox(model, i) for i in command[2]]]
        return command

    def domain(self, model: str, domain: list[Any]) -> list[Any]:
        result = []
        for leaf in domain:
            if not isinstance(leaf, list):
                result.append(leaf)
                continue
            path, operator, value = leaf
            target = self.relation_of(model, path)
            if target is not None:
                value = (
                    [self.to_sandbox(target, v) for v in value]
                    if isinstance(value, list)
                    else self.to_sandbox(target, value)
                )
            result.append([path, operator, value])
        return result

    def relation_of(self, model: str, path: str) -> str | None:
        current: str | None = model
        for name in path.split("."):
            if current is None:
                return None
            if name == "id":
                return current
            spec = self.sandbox.registry.fields(current).get(name)
            current = spec.relation if spec is not None and spec.relation else None
        return current

    # -- answers -----------------------------------------------------------------------------

    def learn(self, model: str | None, recorded: Any, actual: Any, where: str) -> None:
        assert isinstance(actual, int) and not isinstance(actual, bool), where
        if model is None or recorded in (0, False):
            return
        known = self.ids.setdefault(model, {})
        if recorded in known:
            assert known[recorded] == actual, f"{where}: {model} {recorded} is {known[recorded]}"
        else:
            known[recorded] = actual

    def check(
        self,
        recorded: Any,
        actual: Any,
        where: str,
        model: str | None = None,
        key: str | None = None,
        shape_only: bool = False,
    ) -> None:
        if isinstance(recorded, dict):
            assert isinstance(actual, dict), where
            assert sorted(recorded) == sorted(actual), (
                f"{where}: {sorted(recorded)} {sorted(actual)}"
            )
            for name, value in recorded.items():
                if name == "res_id" and isinstance(recorded.get("res_model"), str):
                    self.learn(recorded["res_model"], value, actual[name], f"{where}.res_id")
                    continue
                self.check(
                    value,
                    actual[name],
                    f"{where}.{name}",
                    *self.relation(model, name),
                    shape_only=shape_only,
                )
            return
        if isinstance(recorded, list):
            assert isinstance(actual, list), where
            if (
                key is not None
                and key.endswith("_id")
                and len(recorded) == 2
                and isinstance(recorded[0], int)
            ):
                self.learn(model, recorded[0], actual[0], where)
                self.check(recorded[1], actual[1], where, shape_only=shape_only)
                return
            if not shape_only:
                assert len(recorded) == len(actual), f"{where}: {recorded} != {actual}"
            for index, (r, a) in enumerate(zip(recorded, actual, strict=False)):
                self.check(
                    r,
                    a,
                    f"{where}[{index}]",
                    model,
                    None if key is None else key,
                    shape_only=shape_only,
                )
            return
        if isinstance(recorded, bool) or recorded is None:
            assert recorded == actual or shape_only, f"{where}: {recorded!r} != {actual!r}"
            return
        if isinstance(recorded, int) and model is not None:
            self.learn(model, recorded, actual, where)
            return
        if isinstance(recorded, float | int):
            assert isinstance(actual, int | float) and not isinstance(actual, bool), where
            if shape_only or (key in LOOSE_FLOATS and recorded < 1):
                return
            assert recorded == actual, f"{where}: {recorded!r} != {actual!r}"
            return
        assert isinstance(actual, str), f"{where}: {actual!r}"
        if not shape_only:
            assert _DIGITS.sub("#", recorded) == _DIGITS.sub("#", actual), (
                f"{where}: {recorded!r} != {actual!r}"
            )

    def relation(self, model: str | None, name: str) -> tuple[str | None, str]:
        if name == "id":
            return model, name
        if model is not None and self.sandbox.registry.has_model(model):
            spec = self.sandbox.registry.fields(model).get(name)
            if spec is not None:
                return (spec.relation or None), name
        bare = name.removeprefix("default_")
        return KEY_MODELS.get(bare), name


def _result_model(params: dict[str, Any]) -> str | None:
    if params.get("service") == "common" and params.get("method") in ("authenticate", "login"):
        return "res.users"
    if params.get("service") != "object":
        return None
    model, method = params["args"][3], params["args"][4]
    if method in ("create", "search", "read", "search_read"):
        return str(model)
    return None


RECORDS = [json.loads(line) for line in RECORDING.read_text().splitlines()]


async def test_recorded_probe_replays_on_the_18_sandbox() -> None:
    records = RECORDS
    frozen = datetime(2026, 11, 26, 23, 55, 0)
    sandbox = Sandbox(18, clock=lambda: frozen)
    server = SandboxServer(sandbox)
    await server.start()
    replay = Replay(sandbox)
    replayed = 0
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            for index, record in enumerate(records):
                if "path" in record or index in NOT_REPLAYED:
                    continue
                request = dict(record["request"])
                request["params"] = replay.translate(request["params"])
                if index in SERIALIZATION_FAULT:
                    sandbox.faults.add(FaultRule(kind="serialization_failure", times=1))
                response = await client.post("/jsonrpc", json=request)
                assert response.status_code == 200, index
                body = response.json()
                where = f"#{index} {record.get('tag') or ''}"
                assert body["jsonrpc"] == "2.0" and body["id"] == request["id"], where
                if "error" in record:
                    _check_error(record["error"], body, where)
                else:
                    assert "error" not in body, f"{where}: {body.get('error')}"
                    if record["result"] is None:
                        assert "result" not in body, where
                    else:
                        replay.check(
                            record["result"],
                            body["result"],
                            where,
                            _result_model(request["params"]),
                            shape_only=index in SHAPE_ONLY,
                        )
                replayed += 1
    finally:
        await server.close()
    assert replayed == len(records) - 12 - len(NOT_REPLAYED)


def _check_error(recorded: dict[str, Any], body: dict[str, Any], where: str) -> None:
    assert "error" in body and "result" not in body, f"{where}: {body}"
    error = body["error"]
    assert (error["code"], error["message"]) == (recorded["code"], recorded["message"]), where
    data, expected = error["data"], recorded["data"]
    assert sorted(data) == sorted(expected), where
    assert data["name"] == expected["name"], f"{where}: {data['name']} {data['message']}"
    fold = _DIGITS.sub
    assert fold("#", data["message"]) == fold("#", expected["message"]), (
        f"{where}: {data['message']!r} != {expected['message']!r}"
    )
    assert [fold("#", a) for a in data["arguments"]] == [
        fold("#", a) for a in expected["arguments"]
    ], where
    assert data["context"] == {} and isinstance(data["debug"], str), where
