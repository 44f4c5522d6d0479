"""Composition root: builds the agent's components from settings and runs them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from agent import __version__
from agent.config import AgentSettings, check_state_dir
from agent.errors import ConfigError
from agent.health.server import HealthServer
from agent.queue.store import QueueStore
from agent.sources import registry
from agent.sources.selection import SourceSelection, select_sources
from agent.uploader.uploader import Uploader
from runtime.notify import Notifier
from runtime.supervisor import Supervisor
from wire.errors import WireError
from wire.keys import key_id, load_private_key

log = logging.getLogger(__name__)


#: Pause between attempts to reach the health server while waiting for it to serve.
_READY_POLL_SECONDS = 0.02


async def run_agent(
    settings: AgentSettings,
    *,
    install_signal_handlers: bool = True,
    notifier: Notifier | None = None,
) -> None:
    """Run every configured component until cancelled (or SIGTERM/SIGINT).

    ``notifier`` (by default from ``NOTIFY_SOCKET``) hears READY=1 once the health server
    accepts connections, WATCHDOG=1 while the queue writer answers, and STOPPING=1.
    """
    notifier = notifier or Notifier()
    try:
        private_key = load_private_key(settings.gateway.signing_key_file)
    except WireError as exc:
        raise ConfigError(f"gateway.signing_key_file: {exc}") from exc
    gateway_id = settings.gateway.id
    check_state_dir(settings.gateway.state_dir, create=True)
    queue = await QueueStore.open(settings.queue_path, gateway_id, settings.queue)
    try:
        uploader = Uploader(settings.relay, queue, gateway_id, private_key)
        components: dict[str, tuple[Callable[[], Awaitable[None]], Callable[[], Any]]] = {
            "uploader": (uploader.run, uploader.stats),
        }
        selection = select_sources(settings)
        for source_plan in registry.plan(settings):
            if source_plan.enabled:
                source = source_plan.kind.build(source_plan.config, queue, gateway_id)
                components[source_plan.kind.name] = (source.run, source.stats)

        providers: dict[str, Callable[[], Any]] = {"queue": queue.stats}
        supervisors = {name: Supervisor(name) for name in components}
        providers.update({name: stats for name, (_, stats) in components.items()})
        identity = {
            "gateway_id": gateway_id,
            "key_id": key_id(private_key.public_key()),
            "version": __version__,
        }
        health = None
        if settings.health.listen:
            health = HealthServer(settings.health, providers, identity, selection.disabled)
        log.info(
            "edge agent %s starting: gateway %s, components %s",
            __version__,
            gateway_id,
            ", ".join(components),
            extra={"gateway_id": gateway_id},
        )
        _log_sources(selection, gateway_id)
        async with asyncio.TaskGroup() as tg:
            if install_signal_handlers:
                _stop_on_signals(asyncio.current_task())
            for name, (run, _) in components.items():
                tg.create_task(supervisors[name].run(run), name=name)
            if health is not None:
                tg.create_task(health.serve(), name="health")
            if notifier.enabled:
                tg.create_task(
                    _notify(notifier, queue, settings.health.listen, f"gateway {gateway_id}"),
                    name="notify",
                )
    finally:
        notifier.stopping("stopping: closing the queue")
        await queue.close()
        log.info("edge agent stopped", extra={"gateway_id": gateway_id})


def _log_sources(selection: SourceSelection, gateway_id: str) -> None:
    extra = {"gateway_id": gateway_id}
    if selection.running:
        log.info("sources running: %s", ", ".join(selection.running), extra=extra)
    else:
        log.warning("no source runs: nothing new is read, only what is queued is sent", extra=extra)
    for name, why in selection.disabled.items():
        log.warning("source %s is configured but does not run: %s", name, why, extra=extra)


async def _notify(notifier: Notifier, queue: QueueStore, listen: str, what: str) -> None:
    """READY=1 once the health page serves (at once without one), then watchdog pings."""
    if listen:
        await _wait_until_accepting(listen)
    notifier.ready(f"serving: {what}")

    def status() -> str:
        stats = queue.stats()
        text = f"serving: {what}, {stats.pending} events queued"
        return f"{text}; {stats.last_error}" if stats.last_error else text

    await notifier.run_watchdog(queue.ping, what="queue writer", status=status)


async def _wait_until_accepting(listen: str) -> None:
    """Return once ``host:port`` accepts a TCP connection (the server has no start-up hook)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    while True:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(_READY_POLL_SECONDS)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


def _stop_on_signals(task: asyncio.Task[Any] | None) -> None:
    loop = asyncio.get_running_loop()
    if task is None:
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
