"""systemd's notify protocol (sd_notify(3)), spoken directly: readiness, watchdog, status.

Under ``Type=notify`` systemd counts a service started only at ``READY=1``, and with
``WatchdogSec=`` it restarts one whose ``WATCHDOG=1`` pings stop. Messages are datagrams
to the socket named in ``NOTIFY_SOCKET`` (``@name``: the abstract namespace). Without it (a
terminal, a container) every call does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

#: Longest a notify datagram may block the event loop (systemd reads its socket promptly).
SEND_TIMEOUT_SECONDS = 1.0

Probe = Callable[[], Awaitable[bool]]


class Notifier:
    """Tells the service manager that started this process how it is doing."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        """Read ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` from ``environ`` (the process's)."""
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env) if self._address else None

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self._address is not None

    def send(self, *assignments: str) -> None:
        """Send ``KEY=value`` lines in one datagram; a failure is logged, not raised."""
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(SEND_TIMEOUT_SECONDS)
                sock.sendto("\n".join(assignments).encode(), self._address)
        except OSError as exc:
            log.warning("cannot notify the service manager: %s", exc, extra={"error": str(exc)})

    def ready(self, status: str) -> None:
        """The program serves: systemd finishes starting the unit."""
        self.send("READY=1", _status(status))

    def status(self, status: str) -> None:
        """A one-line state for ``systemctl status``."""
        self.send(_status(status))

    def stopping(self, status: str = "stopping") -> None:
        """The program is shutting down on purpose."""
        self.send("STOPPING=1", _status(status))

    async def run_watchdog(
        self,
        probe: Probe | None = None,
        *,
        what: str = "health probe",
        status: Callable[[], str] | None = None,
    ) -> None:
        """Ping every half ``WatchdogSec`` while ``probe`` answers True within a quarter of it.

        Runs on the event loop, so a blocked loop misses its pings too. ``status`` refreshes
        the unit's status line at each tick. Returns at once when no watchdog is configured.
        """
        if self.watchdog_seconds is None:
            return
        interval = self.watchdog_seconds / 2
        loop = asyncio.get_running_loop()
        healthy = True
        while True:
            started = loop.time()
            ok = probe is None or await _answers(probe, interval / 2)
            if ok:
                self.send("WATCHDOG=1", *([_status(status())] if status else []))
            else:
                self.status(f"{what} not answering: watchdog withheld")
            if ok != healthy:
                if ok:
                    log.info("%s answers again: watchdog pings resumed", what)
                else:
                    log.error(
                        "%s not answering: watchdog pings withheld, systemd restarts the service "
                        "after %.0f s of this",
                        what,
                        self.watchdog_seconds,
                    )
                healthy = ok
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))


async def _answers(probe: Probe, timeout_seconds: float) -> bool:
    try:
        async with asyncio.timeout(timeout_seconds):
            return await probe()
    except TimeoutError:
        return False


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.split())


def _socket_address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    if value:
        log.warning("NOTIFY_SOCKET=%s is not a path or an abstract name: not notifying", value)
    return None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """``WATCHDOG_USEC`` in seconds, when it is meant for this process (``WATCHDOG_PID``)."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None
