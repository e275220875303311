"""Run the grant path's statements on psycopg's cursor, without SQLAlchemy's execution context.

SQLAlchemy Core costs 60-150 µs of CPU per statement over the same compiled SQL run on the
driver's cursor (measured on the bench machine: the grant's facts statement 250-275 µs
against 90-130 µs). Here a statement is compiled once by SQLAlchemy for the connection's
dialect and run on the cursor of the connection SQLAlchemy holds, in its transaction, with
what SQLAlchemy's own execution keeps:

* the statement's bind and result type processors;
* the engine's ``before_cursor_execute``/``after_cursor_execute`` listeners (statement logs,
  the statement-count and critical-section tests, the benchmark's lock clock);
* the exception types (``IntegrityError``, ``OperationalError``, …) and a lost connection's
  invalidation of the pool, through the connection's own DBAPI error handling.

Other drivers (SQLite) go through ``Connection.execute`` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

Executor = Connection | Session
Row = tuple[Any, ...]


@dataclass(slots=True)
class _Compiled:
    compiled: SQLCompiler
    bind_processors: tuple[tuple[str, Callable[[Any], Any]], ...]
    result_types: tuple[TypeEngine[Any], ...]
    # Result processors depend on the driver's type codes: found at the first run.
    result_processors: tuple[Callable[[Any], Any] | None, ...] | None = None

    def processors(self, dialect: Dialect, description: Sequence[Any]
                   ) -> tuple[Callable[[Any], Any] | None, ...]:
        if not self.result_types:  # a statement without typed columns (text, DML)
            return ()
        if self.result_processors is None:
            self.result_processors = tuple(
                type_.dialect_impl(dialect).result_processor(dialect, column[1])
                for type_, column in zip(self.result_types, description, strict=True))
        return self.result_processors


# Keyed by the statement object: meant for statements built once at import (grant_rows, repo,
# gate), so it holds a handful of entries.
_COMPILED: dict[tuple[Executable, type[Dialect], object], _Compiled] = {}


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    key = (statement, type(dialect), dialect.server_version_info)
    found = _COMPILED.get(key)
    if found is None:
        compiled = cast(SQLCompiler, cast(ClauseElement, statement).compile(dialect=dialect))
        binds = tuple(
            (name, processor) for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)))
        columns = getattr(statement, "exported_columns", ())
        found = _COMPILED[key] = _Compiled(compiled, binds,
                                           tuple(column.type for column in columns))
    return found


_CURSOR = "provisioner.direct.cursor"  # key in the pooled connection's info


def _cursor(conn: Connection) -> Any:
    """The DBAPI connection's own cursor for these statements, made once per connection.

    A psycopg cursor is reusable (each ``execute`` starts afresh), and making one copies the
    connection's adapters: about 5 µs per statement. It lives in the pool entry's ``info``,
    which SQLAlchemy clears when it replaces the DBAPI connection (invalidation).
    """
    pooled = conn.connection
    cursor = pooled.info.get(_CURSOR)
    if cursor is None or cursor.closed or cursor.connection is not pooled.dbapi_connection:
        cursor = pooled.info[_CURSOR] = pooled.cursor()
    return cursor


def rows(executor: Executor, statement: Executable, params: Mapping[str, Any]) -> list[Row]:
    """Run ``statement`` with ``params`` in the executor's transaction; return its rows."""
    conn = executor.connection() if isinstance(executor, Session) else executor
    if conn.dialect.driver != "psycopg":
        result = conn.execute(statement, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []
    compiled = _compile(statement, conn.dialect)
    sql = compiled.compiled.string
    values = compiled.compiled.construct_params(dict(params))
    for name, processor in compiled.bind_processors:
        values[name] = processor(values[name])
    cursor = _cursor(conn)
    dispatch = conn.dispatch
    try:
        for listener in dispatch.before_cursor_execute:
            listener(conn, cursor, sql, values, None, False)
        cursor.execute(sql, values)
        for listener in dispatch.after_cursor_execute:
            listener(conn, cursor, sql, values, None, False)
        description = cursor.description
        if description is None:
            return []
        return _processed(cursor.fetchall(), compiled.processors(conn.dialect, description))
    except Exception as exc:
        # SQLAlchemy's own handler (what Connection.execute calls): it wraps DBAPI errors in
        # SQLAlchemy's types and, for a lost connection, invalidates it and the pool's older
        # ones. tests/integration/test_site_direct.py holds both to account.
        conn._handle_dbapi_exception(exc, sql, values, cursor, None)


def _processed(found: Sequence[Row], processors: tuple[Callable[[Any], Any] | None, ...]
               ) -> list[Row]:
    if not any(processors):
        return [tuple(row) for row in found]
    return [tuple(value if processor is None else processor(value)
                  for value, processor in zip(row, processors, strict=True)) for row in found]


def one(executor: Executor, statement: Executable, params: Mapping[str, Any]) -> Row:
    """The statement's only row (as ``Result.one``)."""
    found = one_or_none(executor, statement, params)
    if found is None:
        raise NoResultFound("No row was found when one was required")
    return found


def one_or_none(executor: Executor, statement: Executable, params: Mapping[str, Any]
                ) -> Row | None:
    """The statement's row, or ``None`` when it returns none (as ``Result.one_or_none``)."""
    found = rows(executor, statement, params)
    if len(found) > 1:
        raise MultipleResultsFound("Multiple rows were found when one or none was required")
    return found[0] if found else None
