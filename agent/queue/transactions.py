"""The queue's write transactions, each one function run on the writer's thread in one call.

They read and write only the database and the seq mark; the figures they start from come in
as a :class:`Base` snapshot and what changed goes back as a return value, so the event loop's
:class:`~agent.queue.mirror.Mirror` is only ever touched on the loop.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.queue import schema
from agent.queue.batchplan import Plan, Work, plan_commit
from agent.queue.seqmark import SEQ_BLOCK, SeqMark, write_mark

log = logging.getLogger(__name__)

_KEY_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Base:
    """The committed figures a transaction starts from, and the limits it keeps."""

    path: Path
    gateway_id: str
    next_seq: int
    acked_seq: int
    seq_ceiling: int
    bytes: int
    enqueued: int
    duplicates: int
    shed: int
    rejected: int
    prune_dedupe_to: int | None
    reject_rows: int


@dataclass(frozen=True, slots=True)
class AckOutcome:
    """What an ack chunk left behind."""

    bytes: int
    first_seq: int | None
    first_created: float | None


def commit_batch(conn: sqlite3.Connection, batch: list[Work], base: Base, now: float) -> Plan:
    """Assign seqs and write ``batch``, its state and rejects, and the meta figures, at once.

    The seq mark is raised (durably) before the COMMIT that uses seqs beyond it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        plan = plan_commit(batch, base.next_seq, _known_keys(conn, batch), now)
        if plan.next_seq - 1 > base.seq_ceiling:
            plan.seq_ceiling = plan.next_seq - 1 + SEQ_BLOCK
            write_mark(base.path, SeqMark(base.gateway_id, base.acked_seq, plan.seq_ceiling))
        _write_plan(conn, plan, base)
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise
    return plan


def _known_keys(conn: sqlite3.Connection, batch: list[Work]) -> set[str]:
    keys = [
        ev.dedupe_key
        for w in batch
        for ev, enc in zip(w.events, w.encoded, strict=True)
        if enc is not None and ev.dedupe_key is not None
    ]
    known: set[str] = set()
    for i in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[i : i + _KEY_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT key FROM dedupe WHERE key IN ({marks})", chunk)
        known.update(str(r[0]) for r in rows)
    return known


def _write_plan(conn: sqlite3.Connection, plan: Plan, base: Base) -> None:
    if plan.events:
        conn.executemany(
            "INSERT INTO events (seq, id, type, created_at, body) VALUES (?, ?, ?, ?, ?)",
            plan.events,
        )
    if plan.dedupe:
        conn.executemany(
            "INSERT OR REPLACE INTO dedupe (key, seq, created) VALUES (?, ?, ?)", plan.dedupe
        )
        if base.prune_dedupe_to is not None:
            conn.execute(
                "DELETE FROM dedupe WHERE seq < "
                "(SELECT seq FROM dedupe ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                (base.prune_dedupe_to - 1,),
            )
    if plan.state:
        conn.executemany(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            plan.state,
        )
    if plan.rejects:
        conn.executemany(
            "INSERT INTO rejects (at, source, location, reason, payload) VALUES (?,?,?,?,?)",
            plan.rejects,
        )
        conn.execute(
            "DELETE FROM rejects WHERE id <= (SELECT MAX(id) FROM rejects) - ?",
            (base.reject_rows,),
        )
    conn.executemany(
        "UPDATE meta SET value = ? WHERE key = ?",
        [
            (plan.next_seq, "next_seq"),
            (base.bytes + plan.bytes, "queued_bytes"),
            (base.enqueued + len(plan.events), "enqueued_total"),
            (base.duplicates + plan.duplicates, "duplicates_total"),
            (base.shed, "shed_total"),
            (base.rejected, "rejects_total"),
        ],
    )


def ack_chunk(conn: sqlite3.Connection, end: int, everything: bool, base: Base) -> AckOutcome:
    """Delete events through ``end`` and persist ``acked_seq`` with it; then the seq mark.

    ``everything`` clears the table, which frees its pages without rewriting them.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if everything:
            conn.execute("DELETE FROM events")  # SQLite's truncate optimisation
            new_bytes = 0
        else:
            (freed,) = conn.execute(
                "SELECT COALESCE(SUM(length(body)), 0) FROM events WHERE seq <= ?", (end,)
            ).fetchone()
            new_bytes = max(0, base.bytes - int(freed))
            conn.execute("DELETE FROM events WHERE seq <= ?", (end,))
        conn.executemany(
            "UPDATE meta SET value = ? WHERE key = ?",
            [(end, "acked_seq"), (new_bytes, "queued_bytes")],
        )
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise
    try:
        write_mark(base.path, SeqMark(base.gateway_id, end, base.seq_ceiling))
    except OSError as exc:  # the mark's acked seq is for the record; its ceiling still holds
        log.warning("cannot update the seq mark after an ack: %s", exc)
    first = conn.execute("SELECT seq, created_at FROM events ORDER BY seq LIMIT 1").fetchone()
    if first is None:
        return AckOutcome(new_bytes, None, None)
    return AckOutcome(new_bytes, int(first[0]), float(first[1]))


def reclaim(conn: sqlite3.Connection, pages: int, only_freed: bool) -> None:
    """Give space back to the file system: empty the WAL, return up to ``pages`` free pages.

    The incremental vacuum moves pages through the WAL, so it is bounded, and the WAL is
    emptied again after it. ``only_freed``: do nothing unless deletes left free pages (so a
    pause is not ended by emptying the WAL of the very commit that found the disk full).
    """
    if only_freed and not conn.execute("PRAGMA freelist_count").fetchone()[0]:
        return
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def forget_acked_keys(conn: sqlite3.Connection, acked_seq: int, keep: int) -> int:
    """Delete the dedupe keys of acknowledged events but the newest ``keep``; the rows left."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "DELETE FROM dedupe WHERE seq <= ? AND seq < COALESCE("
            "(SELECT seq FROM dedupe ORDER BY seq DESC LIMIT 1 OFFSET ?), 0)",
            (acked_seq, keep - 1),
        )
        (left,) = conn.execute("SELECT COUNT(*) FROM dedupe").fetchone()
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise
    return int(left)


def probe(conn: sqlite3.Connection, size: int) -> None:
    """Commit ``size`` bytes and free them again: raises SQLITE_FULL while the disk is full.

    The freed pages stay in the file, where the next commits reuse them.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT INTO probe (filler) VALUES (zeroblob(?))", (size,))
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise
    conn.execute("DELETE FROM probe")
