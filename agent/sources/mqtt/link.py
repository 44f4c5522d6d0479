"""One MQTT connection: a paho client driven by the asyncio loop through its socket callbacks.

Driving paho from the loop thread (``loop_read`` when the socket is readable, ``loop_write``
when paho has something to send) measured about twice the message rate of paho's own network
thread with manual acks, and needs no locks: every call into paho happens on the loop thread,
except the blocking TCP/TLS connect, which runs in a worker thread before any reading starts.

The link reads only while it holds fewer than ``max_unacked_messages`` without a PUBACK.
Over MQTT 5 it also asks the broker for that Receive Maximum, but over 3.1.1 mosquitto 2.0 does
not hold its in-flight window against a manual-acking client (each PUBACK releases more), so
the bound is kept here. A link serves one connection; reconnecting makes a new one.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.errors import TransientError
from agent.sources.mqtt.config import MqttConfig

log = logging.getLogger(__name__)

Message = paho.MQTTMessage
#: Called on the loop thread with the messages read in one go (never an empty list).
Deliver = Callable[[list[Message]], None]

_MISC_INTERVAL_SECONDS = 1.0
#: What paho reports for a connection that simply broke.
_UNSPECIFIED_ERROR = 0x80


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """What a link needs besides the broker address: identity, credentials, TLS."""

    client_id: str
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    tls_insecure: bool = False
    will: tuple[str, bytes, int, bool] | None = None
    """Last will: (topic, payload, qos, retain), published by the broker when the link dies."""


class MqttLink:
    """A single connection to the broker, read with a bound on unacknowledged messages."""

    def __init__(self, config: MqttConfig, options: LinkOptions, deliver: Deliver) -> None:
        self._cfg = config
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        v5 = config.protocol == "5"
        self._v5 = v5
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            clean_session=None if v5 else False,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        if options.username is not None:
            client.username_pw_set(options.username, options.password)
        if options.will is not None:
            topic, payload, qos, retain = options.will
            client.will_set(topic, payload, qos, retain)
        if options.tls is not None:
            client.tls_set_context(options.tls)
            if options.tls_insecure:
                client.tls_insecure_set(True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._client = client
        self._sock: Any = None
        self._reading = False
        self._writing = False
        self._flush_scheduled = False
        self._inbox: list[Message] = []
        self._held = 0
        self._paused = False
        self._connack: asyncio.Future[bool] = self._loop.create_future()
        self._closed: asyncio.Future[str] = self._loop.create_future()
        self._misc_task: asyncio.Task[None] | None = None
        self._acks: dict[int, asyncio.Future[list[ReasonCode]]] = {}

    # ---------------------------------------------------------------- connecting and closing

    async def connect(self, timeout_seconds: float) -> bool:
        """Connect and wait for CONNACK; return whether the broker still had our session.

        Raises :class:`TransientError` when the broker cannot be reached or refuses us.
        """
        cfg = self._cfg
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry_seconds
            props.ReceiveMaximum = cfg.max_unacked_messages
        try:
            async with asyncio.timeout(timeout_seconds):
                await asyncio.to_thread(
                    self._client.connect,
                    cfg.host,
                    cfg.port,
                    cfg.keepalive_seconds,
                    clean_start=False if self._v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                    properties=props,
                )
                self._start()
                return await self._connack
        except TimeoutError:
            self.close()
            raise TransientError(
                f"no CONNACK from {cfg.host}:{cfg.port} within {timeout_seconds:.0f} s"
            ) from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.close()
            raise TransientError(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    async def subscribe(
        self, filters: Sequence[tuple[str, int]], timeout_seconds: float
    ) -> list[str]:
        """Subscribe to ``(topic filter, qos)`` pairs and wait for SUBACK; return refused ones."""
        if self._v5:
            request: Any = [(t, SubscribeOptions(qos=q)) for t, q in filters]
        else:
            request = list(filters)
        _, mid = self._client.subscribe(request)
        reasons = await self._wait_for_ack("SUBACK", mid, timeout_seconds)
        return [f for (f, _), r in zip(filters, reasons, strict=False) if r.is_failure]

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Queue a message to the broker (sent by the loop's writer; QoS 1 retried by paho)."""
        self._client.publish(topic, payload, qos, retain)

    async def unsubscribe(self, filters: Sequence[str], timeout_seconds: float) -> None:
        """Drop subscriptions the persistent session has but the configuration no longer."""
        _, mid = self._client.unsubscribe(list(filters))
        await self._wait_for_ack("UNSUBACK", mid, timeout_seconds)

    async def _wait_for_ack(
        self, what: str, mid: int | None, timeout_seconds: float
    ) -> list[ReasonCode]:
        if mid is None:
            raise TransientError(f"could not send the request for a {what}: not connected")
        future: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._acks[mid] = future
        try:
            async with asyncio.timeout(timeout_seconds):
                waiters: set[asyncio.Future[Any]] = {future, self._closed}
                await asyncio.wait(waiters, return_when="FIRST_COMPLETED")
        except TimeoutError:
            raise TransientError(f"no {what} within {timeout_seconds:.0f} s") from None
        finally:
            self._acks.pop(mid, None)
        if not future.done():
            raise TransientError(f"connection lost while waiting for a {what}")
        return future.result()

    async def wait_closed(self) -> str:
        """Wait until the connection ends; return why."""
        return await asyncio.shield(self._closed)

    @property
    def is_open(self) -> bool:
        return not self._closed.done()

    def close(self, why: str = "closed by the agent") -> None:
        """Send DISCONNECT if connected (the broker keeps the session) and let go of the socket."""
        connected = (
            self._connack.done()
            and not self._connack.cancelled()
            and self._connack.exception() is None
            and self.is_open
        )
        self._mark_closed(why)
        if connected:
            self._client.disconnect()
            self._flush()
        self._detach()
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    # --------------------------------------------------------------------- reading, acking

    @property
    def held(self) -> int:
        """Messages handed out and not yet acknowledged or released."""
        return self._held

    def pause_reading(self) -> None:
        """Stop reading until :meth:`resume_reading` (the queue is full)."""
        self._paused = True
        self._update_reader()

    def resume_reading(self) -> None:
        self._paused = False
        self._update_reader()

    def ack(self, messages: Sequence[Message]) -> None:
        """PUBACK (or PUBCOMP) each message; call only once its event is committed."""
        client = self._client
        if self.is_open:
            for m in messages:
                if m.qos:
                    client.ack(m.mid, m.qos)
        self.release(len(messages))

    def release(self, count: int) -> None:
        """Forget ``count`` held messages without acknowledging them."""
        self._held = max(0, self._held - count)
        self._update_reader()

    def _on_readable(self) -> None:
        """Read as many messages as the bound allows, then hand them over in one list."""
        client = self._client
        inbox = self._inbox
        room = self._cfg.max_unacked_messages - self._held
        try:
            while len(inbox) < room:
                before = len(inbox)
                if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or len(inbox) == before:
                    break
            if inbox:
                self._inbox = []
                self._held += len(inbox)
                self._deliver(inbox)
        except Exception as exc:
            # A reader callback must not raise: the loop would log it and call it again.
            log.exception("reading from the broker failed; reconnecting")
            self.close(f"read failed: {type(exc).__name__}: {exc}")
            return
        self._update_reader()
        sock = self._sock
        if self._reading and isinstance(sock, ssl.SSLSocket) and sock.pending():
            # Decrypted bytes wait inside the TLS layer, where the selector cannot see them.
            self._loop.call_soon(self._on_readable)

    def _update_reader(self) -> None:
        want = (
            self._sock is not None
            and not self._paused
            and self._held < self._cfg.max_unacked_messages
            and self.is_open
        )
        if want and not self._reading:
            self._loop.add_reader(self._sock, self._on_readable)
            self._reading = True
            # Bytes may already wait in TLS (or paho) buffers the selector does not see.
            self._loop.call_soon(self._poll_buffered)
        elif not want and self._reading:
            self._loop.remove_reader(self._sock)
            self._reading = False

    def _poll_buffered(self) -> None:
        sock = self._sock
        if self._reading and isinstance(sock, ssl.SSLSocket) and sock.pending():
            self._on_readable()

    # --------------------------------------------------------------------- paho callbacks

    def _on_message(self, _client: paho.Client, _userdata: Any, message: Message) -> None:
        self._inbox.append(message)

    def _on_connect(
        self,
        _client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if self._connack.done():
            return
        if reason.is_failure:
            self._connack.set_exception(TransientError(f"broker refused the connection: {reason}"))
        else:
            self._connack.set_result(bool(flags.session_present))

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        future = self._acks.get(mid)
        if future is not None and not future.done():
            future.set_result(reasons)

    def _on_unsubscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        self._on_subscribe(_client, _userdata, mid, reasons, _properties)

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if flags.is_disconnect_packet_from_server:
            self._mark_closed(f"the broker sent DISCONNECT: {reason}")
        elif reason.value == _UNSPECIFIED_ERROR:
            self._mark_closed("connection lost")
        else:
            self._mark_closed(str(reason))

    def _mark_closed(self, why: str) -> None:
        if not self._connack.done():
            self._connack.set_exception(TransientError(f"connection closed before CONNACK: {why}"))
            self._connack.exception()  # retrieved here: a failed connect may never await it
        if not self._closed.done():
            self._closed.set_result(why)
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None

    def _on_socket_open(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._sock = sock  # registered with the loop by _start(), on the loop thread

    def _on_socket_close(self, _client: paho.Client, _userdata: Any, _sock: Any) -> None:
        self._call_on_loop(self._detach)

    def _on_register_write(self, _client: paho.Client, _userdata: Any, _sock: Any) -> None:
        self._call_on_loop(self._schedule_flush)

    def _on_unregister_write(self, _client: paho.Client, _userdata: Any, _sock: Any) -> None:
        self._call_on_loop(self._stop_writing)

    # ----------------------------------------------------------------------- plumbing

    def _call_on_loop(self, fn: Callable[[], None]) -> None:
        if threading.get_ident() == self._thread_id:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _start(self) -> None:
        if self._sock is None:
            raise OSError("paho opened no socket")
        self._update_reader()
        self._schedule_flush()
        self._misc_task = asyncio.create_task(self._misc_loop(), name="mqtt-keepalive")

    async def _misc_loop(self) -> None:
        """Keep-alive: paho sends PINGREQ when due and drops a connection that stopped answering."""
        while True:
            await asyncio.sleep(_MISC_INTERVAL_SECONDS)
            try:
                self._client.loop_misc()
            except Exception as exc:
                log.exception("MQTT keep-alive failed; reconnecting")
                self.close(f"keep-alive failed: {type(exc).__name__}: {exc}")
                return

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Send what paho has queued (acks, pings); wait for writability if the socket is full."""
        self._flush_scheduled = False
        if self._sock is None:
            return
        self._client.loop_write()
        if self._sock is not None and self._client.want_write() and not self._writing:
            self._loop.add_writer(self._sock, self._flush)
            self._writing = True

    def _stop_writing(self) -> None:
        if self._writing and self._sock is not None:
            self._loop.remove_writer(self._sock)
        self._writing = False

    def _detach(self) -> None:
        """Unregister the socket from the loop (paho closes it)."""
        if self._sock is not None:
            if self._reading:
                self._loop.remove_reader(self._sock)
            if self._writing:
                self._loop.remove_writer(self._sock)
        self._reading = False
        self._writing = False
        self._sock = None
