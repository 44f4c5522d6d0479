"""Read the payloads the sources rejected from a queue file, read-only, beside a running agent.

For ``edge-agent rejects``: like :mod:`agent.queue.stats_reader` it opens the file with
``mode=ro``, so it never writes and never blocks the agent's writer.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from agent.errors import AgentError, QueueCorruptError
from agent.queue.model import Reject


def read_rejects(path: Path, limit: int) -> tuple[list[Reject], int]:
    """The newest ``limit`` rejects kept in the queue at ``path`` (newest first), and how many
    were rejected in all since the queue was made."""
    if not path.exists():
        raise AgentError(f"{path}: no queue file (has the agent run with this configuration?)")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise QueueCorruptError(f"cannot open queue file {path}: {exc}") from exc
    try:
        with conn:
            conn.execute("BEGIN")
            rows = conn.execute(
                "SELECT at, source, location, reason, payload FROM rejects "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            total = conn.execute("SELECT value FROM meta WHERE key = 'rejects_total'").fetchone()
    except sqlite3.Error as exc:
        raise QueueCorruptError(f"cannot read queue file {path}: {exc}") from exc
    finally:
        conn.close()
    rejects = [
        Reject(datetime.fromtimestamp(float(at), UTC), str(src), str(loc), str(why), bytes(p))
        for at, src, loc, why, p in rows
    ]
    return rejects, int(str(total[0])) if total else len(rejects)
