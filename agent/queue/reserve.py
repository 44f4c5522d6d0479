"""Disk space held back beside the queue so that a full disk never leaves it unable to drain.

When SQLite runs out of disk, its WAL may hold commits that need the file to grow at the next
checkpoint, and an ack's DELETE needs WAL space too: without room nothing could ever be acked
and the queue would stay full for good. ``<queue>.reserve`` (allocated blocks) is released the
moment an ack finds no space, which gives the acks their room, and is taken back only once the
file system has room for it and more (:mod:`agent.queue.diskfull`).
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Share of the queue's free disk space above which the reserve is worth a warning.
_WARN_SHARE = 0.25


class DiskReserve:
    """A file of ``size`` allocated bytes next to the queue; ``size`` 0 turns it off."""

    def __init__(self, queue_path: Path, size: int) -> None:
        self.path = queue_path.with_name(queue_path.name + ".reserve")
        self.size = size

    @property
    def present(self) -> bool:
        """Whether the reserve is held (always, when it is turned off)."""
        if self.size == 0:
            return True
        try:
            return self.path.stat().st_size >= self.size
        except FileNotFoundError:
            return False

    def free_bytes(self) -> int:
        """Space the file system offers an unprivileged writer in the queue's directory."""
        st = os.statvfs(self.path.parent)
        return st.f_bavail * st.f_frsize

    def take(self) -> bool:
        """Allocate the reserve if it is missing; ``False`` when the disk has no room for it.

        A file system that cannot hold it for another reason (permissions, no allocation
        support) is logged and the queue goes on without a reserve.
        """
        if self.present:
            return True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return False
            log.warning(
                "cannot hold a disk reserve at %s (%s): going on without one", self.path, exc
            )
            self.size = 0
        return True

    def release(self) -> bool:
        """Give the reserved space back to the file system; ``True`` if there was any."""
        if self.size == 0:
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        log.warning(
            "released %d reserved bytes beside the full queue so acks can proceed", self.size
        )
        return True


def reserve_warning(queue_path: Path, size: int) -> str | None:
    """A warning for ``check-config`` when the reserve takes much of the disk the queue has.

    Counts a reserve already held (by a running agent) as space the queue has.
    """
    if size == 0:
        return None
    directory = queue_path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    reserve = DiskReserve(queue_path, size)
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    held = reserve.path.stat().st_size if reserve.path.is_file() else 0
    available = st.f_bavail * st.f_frsize + held
    if size <= _WARN_SHARE * available:
        return None
    return (
        f"[queue] disk_reserve_bytes = {size} is {size / max(1, available):.0%} of the "
        f"{available} bytes free for the queue in {directory}: little is left for events "
        "before the disk is full; lower it or give the queue more room"
    )
