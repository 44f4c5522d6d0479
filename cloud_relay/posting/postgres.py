"""The posting store in the inbox's PostgreSQL database: its three roles in one class.

See :mod:`~cloud_relay.posting.postgres_base` for the schema and connection, and the role modules
``writer_lock_postgres``, ``queue_postgres`` and ``dead_letters_postgres`` for the queries.
"""

from __future__ import annotations

from cloud_relay.posting.dead_letters_postgres import PostgresDeadLetters
from cloud_relay.posting.queue_postgres import PostgresPostingQueue
from cloud_relay.posting.writer_lock_postgres import PostgresWriterLock

__all__ = ["PostgresPostingStore"]


class PostgresPostingStore(PostgresWriterLock, PostgresPostingQueue, PostgresDeadLetters):
    """:class:`~cloud_relay.posting.store.PostingStore` on PostgreSQL."""
