"""The seq mark: a small sidecar file ``<queue>.seq`` that outlives a lost or corrupt queue file.

The relay acknowledges per gateway ``seq``, so a queue rebuilt from nothing must never reuse a
``seq`` the relay may already hold: reuse would make the relay take new events for a batch it
already stored and drop them silently. The mark therefore keeps ``seq_ceiling``, a bound no
assigned ``seq`` ever exceeds (the writer raises it in blocks, before the commit that needs it),
and ``acked_seq`` for the record. A fresh queue continues at ``seq_ceiling + 1``: the relay then
sees a visible gap instead of a silent collision.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from agent.errors import QueueCorruptError

#: How far ahead of the next seq the ceiling is raised at a time: one small fsync per block.
SEQ_BLOCK = 10_000


@dataclass(frozen=True, slots=True)
class SeqMark:
    """What the sidecar remembers about a gateway's sequence."""

    gateway_id: str
    acked_seq: int
    seq_ceiling: int


def mark_path(queue_path: Path) -> Path:
    """The sidecar's path beside ``queue_path``."""
    return queue_path.with_name(queue_path.name + ".seq")


def read_mark(queue_path: Path) -> SeqMark | None:
    """Read the sidecar of ``queue_path``; ``None`` when there is none."""
    path = mark_path(queue_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(raw)
        return SeqMark(str(doc["gateway_id"]), int(doc["acked_seq"]), int(doc["seq_ceiling"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise QueueCorruptError(
            f"{path}: unreadable seq mark ({exc}); it protects the relay from reused seqs, "
            "so it is not replaced silently: inspect it, then delete it to start over"
        ) from exc


def write_mark(queue_path: Path, mark: SeqMark) -> None:
    """Write the sidecar atomically and durably (write, fsync, rename, fsync the directory)."""
    path = mark_path(queue_path)
    tmp = path.with_name(path.name + ".tmp")
    body = json.dumps(
        {
            "gateway_id": mark.gateway_id,
            "acked_seq": mark.acked_seq,
            "seq_ceiling": mark.seq_ceiling,
        }
    ).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
