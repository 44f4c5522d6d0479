"""One connection to the OPC UA server: connect, resolve nodes, subscribe, notice the loss.

This is the only module that speaks asyncua. Its failures reach the caller as
:class:`~agent.errors.TransientError` (retry with backoff) or
:class:`~agent.errors.ConfigError` (the options can never work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.crypto import security_policies
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.uaerrors import UaError

from agent.errors import ConfigError, TransientError
from agent.sources.opcua.config import NodeRef, OpcuaConfig
from agent.sources.opcua.reading import ORDER_TARGET, Reading

log = logging.getLogger(__name__)

#: Server-side queue per monitored item, so that quick state changes between two publishes are
#: all reported rather than only the last (servers may revise it).
MONITORED_QUEUE_SIZE = 10

#: Everything asyncua raises for a server that is away, refuses, or answers with a bad status.
_FOREIGN_ERRORS = (OSError, asyncio.TimeoutError, UaError, ValueError)

ReadingSink = Callable[[Reading], None]
#: Node id -> indexes of the rules it feeds (:data:`ORDER_TARGET` for the order node).
Routes = dict[ua.NodeId, tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Subscribed:
    """What one connection subscribed: how many nodes, and the ones the server refused."""

    nodes: int
    refused: tuple[str, ...]


class LossSignal:
    """Set once when the connection should end, with the reason in words."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    async def wait(self) -> str:
        await self._event.wait()
        return self.reason


class NotificationHandler:
    """asyncua's subscription handler: turns a data change into a :class:`Reading`, cheaply."""

    def __init__(
        self, routes: dict[ua.NodeId, tuple[int, ...]], sink: ReadingSink, lost: LossSignal
    ) -> None:
        self._routes = routes
        self._sink = sink
        self._lost = lost

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        targets = self._routes.get(node.nodeid)
        if targets is None:
            return
        value = data.monitored_item.Value
        status = value.StatusCode
        bad = status.name if status is not None and status.is_bad() else None
        at = value.SourceTimestamp or value.ServerTimestamp or datetime.now(UTC)
        self._sink(Reading(targets, val, _utc(at), bad))

    def status_change_notification(self, status: Any) -> None:
        self._lost.set(f"subscription status {status.Status.name}")


def parse_node_id(namespace_index: int, identifier: str) -> ua.NodeId:
    """The NodeId of ``identifier`` (``s=…``, ``i=…``, ``g=…``, ``b=…``) in a namespace."""
    try:
        node_id: ua.NodeId = ua.NodeId.from_string(f"ns={namespace_index};{identifier}")
    except (ValueError, UaError, IndexError) as exc:
        raise ConfigError(
            f"[opcua] node identifier {identifier!r} is not an OPC UA identifier: it must be "
            "i=<number>, s=<string>, g=<guid> or b=<base64>"
        ) from exc
    return node_id


def check_config(config: OpcuaConfig) -> None:
    """Refuse options that could never connect, before the first attempt."""
    for rule in config.nodes:
        parse_node_id(0, rule.identifier)
    if config.order is not None and config.order.node is not None:
        parse_node_id(0, config.order.node.identifier)
    for name in (
        "certificate_file",
        "private_key_file",
        "server_certificate_file",
        "password_file",
    ):
        path = getattr(config, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"[opcua] {name}: {path} is not a readable file")


async def connect(config: OpcuaConfig) -> Client:
    """A connected client with the configured security and user token."""
    assert config.endpoint is not None
    client = Client(
        config.endpoint,
        timeout=config.timeout_seconds,
        watchdog_intervall=config.watchdog_interval_seconds,
    )
    client.application_uri = config.application_uri
    client.session_timeout = int(config.session_timeout_seconds * 1000)
    try:
        if config.security_policy != "None":
            await client.set_security(
                getattr(security_policies, f"SecurityPolicy{config.security_policy}"),
                certificate=str(config.certificate_file),
                private_key=str(config.private_key_file),
                server_certificate=(
                    str(config.server_certificate_file) if config.server_certificate_file else None
                ),
                mode=getattr(ua.MessageSecurityMode, config.security_mode),
            )
        if config.username is not None:
            client.set_user(config.username)
        if config.password_file is not None:
            client.set_password(config.password_file.read_text().rstrip("\r\n"))
        await client.connect()
    except _FOREIGN_ERRORS as exc:
        raise TransientError(f"connect to {config.endpoint}: {_describe(exc)}") from exc
    return client


async def resolve(
    client: Client, config: OpcuaConfig
) -> tuple[dict[ua.NodeId, tuple[int, ...]], ua.NodeId | None]:
    """Node ids for this connection (namespace indexes can change when a server restarts).

    Returns the routes (node id -> indexes of the rules it feeds) and the order node's id.
    """
    indexes: dict[str, int] = {}

    async def node_id(namespace_uri: str, identifier: str) -> ua.NodeId:
        if namespace_uri not in indexes:
            try:
                indexes[namespace_uri] = await client.get_namespace_index(namespace_uri)
            except ValueError as exc:
                raise TransientError(f"the server has no namespace {namespace_uri!r}") from exc
            except _FOREIGN_ERRORS as exc:
                raise TransientError(f"read the namespace array: {_describe(exc)}") from exc
        return parse_node_id(indexes[namespace_uri], identifier)

    routes: dict[ua.NodeId, tuple[int, ...]] = {}
    order_id: ua.NodeId | None = None
    if config.order is not None and config.order.node is not None:
        ref: NodeRef = config.order.node
        order_id = await node_id(ref.namespace_uri, ref.identifier)
        routes[order_id] = (ORDER_TARGET,)
    for index, rule in enumerate(config.nodes):
        nid = await node_id(rule.namespace_uri, rule.identifier)
        routes[nid] = (*routes.get(nid, ()), index)
    return routes, order_id


@dataclass(frozen=True, slots=True)
class NodeTypes:
    """The data type of each node that has one, and the nodes the server does not know."""

    types: dict[ua.NodeId, str]
    """Node id -> variant type name (``UInt32``, ``Boolean``, ``String``…)."""
    unknown: tuple[str, ...]
    """``node: status`` for each node whose data type could not be read."""


async def read_types(client: Client, node_ids: list[ua.NodeId]) -> NodeTypes:
    """Read the DataType attribute of every node in one request."""
    params = ua.ReadParameters()
    for nid in node_ids:
        item = ua.ReadValueId()
        item.NodeId, item.AttributeId = nid, AttributeIds.DataType
        params.NodesToRead.append(item)
    try:
        values = await client.uaclient.read(params)
    except _FOREIGN_ERRORS as exc:
        raise TransientError(f"read the nodes' data types: {_describe(exc)}") from exc
    types: dict[ua.NodeId, str] = {}
    unknown: list[str] = []
    for nid, value in zip(node_ids, values, strict=True):
        status = value.StatusCode
        if status is not None and status.is_bad():
            unknown.append(f"{nid.to_string()}: {status.name}")
            continue
        type_id = value.Value.Value if value.Value is not None else None
        if (
            isinstance(type_id, ua.NodeId)
            and type_id.NamespaceIndex == 0
            and isinstance(type_id.Identifier, int)
        ):
            with contextlib.suppress(ValueError):
                types[nid] = ua.VariantType(type_id.Identifier).name
    return NodeTypes(types, tuple(unknown))


async def subscribe(
    client: Client,
    config: OpcuaConfig,
    routes: dict[ua.NodeId, tuple[int, ...]],
    handler: NotificationHandler,
) -> Subscribed:
    """One subscription with a monitored item per node; the handler gets every change."""
    try:
        subscription = await client.create_subscription(config.publishing_interval_ms, handler)
        node_ids = list(routes)
        results = await subscription.subscribe_data_change(
            [client.get_node(nid) for nid in node_ids],
            queuesize=MONITORED_QUEUE_SIZE,
            sampling_interval=ua.Duration(config.publishing_interval_ms),
        )
    except _FOREIGN_ERRORS as exc:
        raise TransientError(f"subscribe: {_describe(exc)}") from exc
    refused = tuple(
        f"{nid.to_string()}: {result.name}"
        for nid, result in zip(node_ids, results, strict=True)
        if isinstance(result, ua.StatusCode)
    )
    return Subscribed(len(node_ids) - len(refused), refused)


async def read_order(client: Client, order_id: ua.NodeId) -> Reading:
    """The order node's current value, read before any subscribed change is applied."""
    try:
        value = await client.get_node(order_id).read_data_value(raise_on_bad_status=False)
    except _FOREIGN_ERRORS as exc:
        raise TransientError(f"read the order node: {_describe(exc)}") from exc
    status = value.StatusCode
    bad = status.name if status is not None and status.is_bad() else None
    at = value.SourceTimestamp or value.ServerTimestamp or datetime.now(UTC)
    raw = value.Value.Value if value.Value is not None else None
    return Reading((ORDER_TARGET,), raw, _utc(at), bad)


async def watch(client: Client, lost: LossSignal) -> None:
    """Set ``lost`` when the client leaves the connected state (asyncua's watchdog noticed)."""
    async with client.subscribe_state() as states:
        while client.state is UaClientState.CONNECTED:
            await states.next_change()
    lost.set(f"connection {client.state.value}")


async def close(client: Client, timeout_seconds: float) -> None:
    """Close the session and socket; a dead or hung server cannot hold this up for long."""
    try:
        await asyncio.wait_for(client.disconnect(), timeout_seconds)
    except _FOREIGN_ERRORS as exc:
        log.debug("closing the OPC UA client: %s", _describe(exc))
    if client.state is not UaClientState.DISCONNECTED:
        client.disconnect_socket()


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
