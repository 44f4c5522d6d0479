"""A store's tables as a numbered list of migrations, the same idea in SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

from cloud_relay.errors import RelayError


@dataclass(frozen=True)
class Schema:
    """Entry N of ``migrations`` brings the schema from version N to N + 1; append, never edit.

    ``name`` names the schema in logs and, where a table records the version, the table
    (``<name>_schema``).
    """

    name: str
    migrations: tuple[tuple[str, ...], ...]

    @property
    def version_table(self) -> str:
        return f"{self.name}_schema"

    def steps(self, version: int, where: str) -> list[tuple[int, tuple[str, ...]]]:
        """The migrations a database at ``version`` lacks, each with the version it brings;
        RelayError for a database written by a newer relay, which this one must not touch."""
        known = len(self.migrations)
        if version > known:
            raise RelayError(
                f"{where} has schema version {version}, newer than this relay knows ({known}):"
                " upgrade the relay"
            )
        return list(enumerate(self.migrations[version:], start=version + 1))
