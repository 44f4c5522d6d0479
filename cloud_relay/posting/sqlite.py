"""The posting store in the inbox's SQLite file: its three roles in one class.

See :mod:`~cloud_relay.posting.sqlite_base` for the schema and connection, and the role modules
``writer_lock_sqlite``, ``queue_sqlite`` and ``dead_letters_sqlite`` for the queries.
"""

from __future__ import annotations

from cloud_relay.posting.dead_letters_sqlite import SqliteDeadLetters
from cloud_relay.posting.queue_sqlite import SqlitePostingQueue
from cloud_relay.posting.writer_lock_sqlite import SqliteWriterLock

__all__ = ["SqlitePostingStore"]


class SqlitePostingStore(SqliteWriterLock, SqlitePostingQueue, SqliteDeadLetters):
    """:class:`~cloud_relay.posting.store.PostingStore` in one SQLite file (WAL)."""
