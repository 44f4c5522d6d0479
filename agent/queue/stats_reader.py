"""Read a queue's figures from its file, read-only, while the agent may be running.

For ``edge-agent queue-stats``: opens the file with ``mode=ro`` so it never writes, never takes
the queue's lock and never blocks the agent's writer (WAL readers do not block writers). Figures
only the running process knows (commits, files moved aside) read as zero/none; a disk-full pause
is read from the marker file the process keeps while it lasts.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

from agent.errors import AgentError, QueueCorruptError
from agent.queue.diskfull import full_marker_path
from agent.queue.model import QueueStats


def read_queue_stats(path: Path) -> QueueStats:
    """A :class:`QueueStats` snapshot of the queue file at ``path``."""
    if not path.exists():
        raise AgentError(f"{path}: no queue file (has the agent run with this configuration?)")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise QueueCorruptError(f"cannot open queue file {path}: {exc}") from exc
    try:
        stats = _read(conn)
    except sqlite3.Error as exc:
        raise QueueCorruptError(f"cannot read queue file {path}: {exc}") from exc
    finally:
        conn.close()
    if full_marker_path(path).exists():
        why = "the disk is full: sources are paused until space returns"
        return dataclasses.replace(stats, full=True, last_error=why)
    return stats


def _read(conn: sqlite3.Connection) -> QueueStats:
    with conn:
        conn.execute("BEGIN")  # one consistent snapshot across the queries below
        meta = {str(k): v for k, v in conn.execute("SELECT key, value FROM meta")}
        lo, hi = conn.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
        first = conn.execute("SELECT created_at FROM events ORDER BY seq LIMIT 1").fetchone()
    if "gateway_id" not in meta:
        raise QueueCorruptError("the file holds no queue (no gateway id in its meta table)")

    def num(key: str) -> int:
        return int(str(meta.get(key, 0)))

    queued = num("queued_bytes")
    max_bytes = num("max_bytes")
    pending = 0 if lo is None else int(hi) - int(lo) + 1
    return QueueStats(
        pending=pending,
        first_seq=None if lo is None else int(lo),
        last_seq=None if hi is None else int(hi),
        acked_seq=num("acked_seq"),
        bytes=queued,
        max_bytes=max_bytes,
        oldest_age_seconds=None if first is None else max(0.0, time.time() - float(first[0])),
        full=bool(max_bytes) and queued >= max_bytes,
        rejected=num("rejects_total"),
        shed=num("shed_total"),
        duplicates=num("duplicates_total"),
        enqueued_total=num("enqueued_total"),
        commits_total=0,
    )
