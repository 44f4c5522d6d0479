"""A store in PostgreSQL through an asyncpg pool, shared by several relay replicas.

The inbox and the posting store subclass :class:`PostgresStore` and add their queries; it opens
the pool, migrates under an advisory lock and turns asyncpg errors into the relay's errors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from cloud_relay.errors import ConfigError, RelayError, TransientError
from cloud_relay.storage.schema import Schema

logger = logging.getLogger(__name__)

# Failures that may pass: connection lost or refused, serialization failure or deadlock (40),
# disk full / out of memory / too many connections (53), shutdown or statement timeout (57),
# I/O error (58), lock timeout (55P03), a read-only standby after a failover (25006).
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.TransactionRollbackError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.PostgresSystemError,
    asyncpg.LockNotAvailableError,
    asyncpg.ReadOnlySQLTransactionError,
    # asyncpg's protocol left mid-operation by a connection the server ended (a restart).
    asyncpg.InternalClientError,
)
# Errors at connect time that no retry fixes.
_MISCONFIGURED: tuple[type[BaseException], ...] = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidPasswordError,
    asyncpg.ClientConfigurationError,
)


def redact_url(url: str) -> str:
    """The URL with any password replaced, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class PostgresStore:
    """The pool, schema and error translation of a store kept in PostgreSQL.

    ``label`` names the store in errors (``"inbox"``, then the URL without its password).
    ``migration_lock`` is the advisory lock key taken while migrating, so replicas starting
    together do not race on CREATE TABLE; each store has its own. The schema version is kept in
    the table ``<schema name>_schema``.
    """

    def __init__(
        self,
        url: str,
        schema: Schema,
        *,
        label: str,
        migration_lock: int,
        pool_size: int,
        connect_timeout_seconds: float,
        command_timeout_seconds: float,
    ) -> None:
        self._url = url
        self._where = f"{label} {redact_url(url)}"
        self._schema = schema
        self._migration_lock = migration_lock
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout_seconds
        self._command_timeout = command_timeout_seconds
        self._pool: asyncpg.Pool | None = None
        self._transient_errors = 0

    async def open(self) -> None:
        """Create the pool and bring the schema up to date (a no-op when already open)."""
        if self._pool is not None:
            return
        with self._errors(opening=True):
            pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
            )
        try:
            with self._errors(opening=True):
                await self._migrate(pool)
        except BaseException:
            pool.terminate()
            raise
        self._pool = pool

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        schema = self._schema
        table = schema.version_table
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._migration_lock)
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (version integer NOT NULL)")
            version = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {table}")
            for new_version, statements in schema.steps(version, self._where):
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute(f"INSERT INTO {table} (version) VALUES ($1)", new_version)
                logger.info("%s schema migrated to version %d", schema.name, new_version)

    async def close(self) -> None:
        """Close the pool, waiting for connections in use to be released."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def _conn(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._pool

    @contextmanager
    def _errors(self, *, opening: bool = False) -> Iterator[None]:
        """Translate asyncpg and socket errors into the relay's errors, at this one boundary."""
        try:
            yield
        except _TRANSIENT as exc:
            self._transient_errors += 1
            raise TransientError(f"{self._where}: {type(exc).__name__}: {exc}") from exc
        except _MISCONFIGURED as exc:
            if opening:
                raise ConfigError(f"[store] url: {self._where}: {exc}") from exc
            raise RelayError(f"{self._where}: {exc}") from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise RelayError(f"{self._where}: {type(exc).__name__}: {exc}") from exc
