"""A psycopg cursor whose ``description`` builds its column objects only when they are read.

SQLAlchemy reads ``cursor.description`` after every statement that returns rows, but for a
compiled statement it has seen before it only checks that there is one: its result metadata
is cached on the compiled statement. psycopg builds one :class:`psycopg.Column` per result
column on each read (a type-registry lookup and four libpq calls each): 42 columns for the
grant's facts statement, about half of that statement's client-side CPU. Here the columns are
built on first access, from the result the description was taken of.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import psycopg
from psycopg import Column
from psycopg.pq import ExecStatus

_ROWS = (ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK)


class DescriptionMoved(RuntimeError):
    """A description's columns were first read after its cursor moved to another result."""


class LazyDescription(Sequence[Column]):
    """The columns of one result; built from that result on first access."""

    __slots__ = ("_columns", "_cursor", "_length", "_result")

    def __init__(self, cursor: psycopg.Cursor[Any], result: Any, length: int) -> None:
        self._cursor = cursor
        self._result = result
        self._length = length
        self._columns: list[Column] | None = None

    def _built(self) -> list[Column]:
        if self._columns is None:
            if self._cursor.pgresult is not self._result:
                raise DescriptionMoved("cursor.description read after its cursor moved on")
            self._columns = [Column(self._cursor, index) for index in range(self._length)]
        return self._columns

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Column: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Column]: ...

    def __getitem__(self, index: int | slice) -> Column | Sequence[Column]:
        return self._built()[index]

    def __iter__(self) -> Iterator[Column]:
        return iter(self._built())


class LazyDescriptionCursor(psycopg.Cursor[Any]):
    """psycopg's cursor with a :class:`LazyDescription` (same answer, columns built lazily)."""

    @property
    def description(self) -> list[Column] | None:
        result = self.pgresult
        if result and (result.nfields or result.status in _ROWS):
            # A Sequence of Columns, as DB-API asks; psycopg types it as a list.
            return LazyDescription(self, result, result.nfields)  # type: ignore[return-value]
        return None
