"""The sandbox's storage: in-memory tables of rows keyed by id, with indexes and an undo log.

Every RPC call runs in one transaction: if it fails, the undo log puts back every row it touched,
so a failing call changes nothing (Odoo rolls back the same way). Ids and sequence numbers are
not given back on rollback, as PostgreSQL sequences are not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Row = Mapping[str, Any]


@dataclass
class _Table:
    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1
    indexes: dict[str, dict[Any, set[int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Undo:
    model: str
    record_id: int
    old: dict[str, Any] | None
    """The row before the change, or None when the change inserted it."""


class Database:
    """Tables of rows; rows are never mutated in place, an update stores a new dict."""

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}
        self._sequences: dict[str, int] = {}
        self._undo: list[_Undo] | None = None
        self.lock = threading.RLock()
        """Held for the whole of a call: one call at a time, as one serialized transaction."""

    def declare(self, model: str, indexed: tuple[str, ...] = (), first_id: int = 1) -> None:
        """Create the table of ``model`` with indexes on ``indexed`` fields."""
        table = self._tables.setdefault(model, _Table(next_id=first_id))
        table.next_id = max(table.next_id, first_id)
        for name in indexed:
            table.indexes.setdefault(name, {})

    def has_table(self, model: str) -> bool:
        """Whether ``model`` is declared."""
        return model in self._tables

    def insert(self, model: str, values: Mapping[str, Any], record_id: int | None = None) -> int:
        """Store a new row and return its id (the next of the table unless given)."""
        table = self._tables[model]
        if record_id is None:
            record_id = table.next_id
        table.next_id = max(table.next_id, record_id + 1)
        row = dict(values)
        row["id"] = record_id
        self._store(model, record_id, row)
        self._log(model, record_id, None)
        return record_id

    def update(self, model: str, record_id: int, values: Mapping[str, Any]) -> None:
        """Replace fields of a row."""
        old = self._tables[model].rows[record_id]
        self._store(model, record_id, {**old, **values})
        self._log(model, record_id, old)

    def delete(self, model: str, record_id: int) -> None:
        """Remove a row."""
        old = self._tables[model].rows[record_id]
        self._drop(model, record_id)
        self._log(model, record_id, old)

    def get(self, model: str, record_id: int) -> Row | None:
        """The row, or None if there is none with that id."""
        return self._tables[model].rows.get(record_id)

    def exists(self, model: str, record_id: int) -> bool:
        """Whether a row with that id is stored."""
        return record_id in self._tables[model].rows

    def all_ids(self, model: str) -> list[int]:
        """Every id of the table, ascending."""
        return sorted(self._tables[model].rows)

    def is_indexed(self, model: str, name: str) -> bool:
        """Whether field ``name`` of ``model`` has an index."""
        return name in self._tables[model].indexes

    def lookup(self, model: str, name: str, value: Any) -> set[int]:
        """Ids of rows whose indexed field ``name`` equals ``value``."""
        return set(self._tables[model].indexes[name].get(_key(value), ()))

    def next_number(self, sequence: str) -> int:
        """The next number of a named sequence (not rolled back)."""
        number = self._sequences.get(sequence, 0) + 1
        self._sequences[sequence] = number
        return number

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a block as a transaction: on an exception every change it made is undone."""
        if self._undo is not None:
            yield
            return
        self._undo = []
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        finally:
            self._undo = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception undoes the block's changes only."""
        if self._undo is None:
            with self.transaction():
                yield
            return
        mark = len(self._undo)
        try:
            yield
        except BaseException:
            self._rollback(mark)
            raise

    def _rollback(self, mark: int = 0) -> None:
        assert self._undo is not None
        for entry in reversed(self._undo[mark:]):
            if entry.record_id in self._tables[entry.model].rows:
                self._drop(entry.model, entry.record_id)
            if entry.old is not None:
                self._store(entry.model, entry.record_id, entry.old)
        del self._undo[mark:]

    def _log(self, model: str, record_id: int, old: dict[str, Any] | None) -> None:
        if self._undo is not None:
            self._undo.append(_Undo(model, record_id, old))

    def _store(self, model: str, record_id: int, row: dict[str, Any]) -> None:
        table = self._tables[model]
        previous = table.rows.get(record_id)
        for name, index in table.indexes.items():
            if previous is not None:
                _unindex(index, _key(previous.get(name)), record_id)
            index.setdefault(_key(row.get(name)), set()).add(record_id)
        table.rows[record_id] = row

    def _drop(self, model: str, record_id: int) -> None:
        table = self._tables[model]
        previous = table.rows.pop(record_id)
        for name, index in table.indexes.items():
            _unindex(index, _key(previous.get(name)), record_id)


def _key(value: Any) -> Any:
    """Index key of a stored value (lists become tuples, so many2many can be indexed)."""
    if isinstance(value, list):
        return tuple(value)
    return value


def _unindex(index: dict[Any, set[int]], key: Any, record_id: int) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(record_id)
        if not ids:
            del index[key]
