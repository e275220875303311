"""Database engines and sessions: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from provisioner.site.db.pg_cursor import LazyDescriptionCursor

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A PostgreSQL statement waits at most this long for a lock (a grant holds the rows it shares
# with others for about a millisecond). Past it the statement fails (503, the station
# retries with the same request_id) instead of stalling the process: its grants run on the
# event loop one at a time (site/lane.py).
POSTGRES_LOCK_TIMEOUT_MS = 10_000
# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out (a
# server restart or an idle-connection timeout broke it meanwhile); one in steady use is not,
# which saves a round trip per checkout. A connection broken while in use fails its statement,
# and SQLAlchemy then discards every pooled connection older than the failure.
PING_AFTER_IDLE_S = 5.0
_RETURNED_AT = "returned_at"


def sqlite_url(path: str) -> str:
    """Return the SQLAlchemy URL of a SQLite file."""
    return f"sqlite+pysqlite:///{path}"


def _on_sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Take over transaction control so that BEGIN IMMEDIATE is ours to issue (SQLAlchemy docs,
    # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Execution option of a connection that only reads (see :func:`reading`).
READ_ONLY = "provisioner_read_only"


def _on_sqlite_begin(connection: Any) -> None:
    # Every site transaction that may write takes the write lock up front: the SQLite form of
    # the row lock. A read-only one begins deferred: in WAL mode it reads a consistent
    # snapshot and neither waits for nor blocks a writer.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only, each statement a consistent snapshot of its own.

    On SQLite its transactions begin deferred (no write lock); on PostgreSQL it runs in
    autocommit, so a read is one round trip, not BEGIN, SELECT and ROLLBACK. The pool sets
    the connection back to transactions when it returns. It must not write.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            yield connection.execution_options(isolation_level="AUTOCOMMIT")
        else:
            yield connection.execution_options(**{READ_ONLY: True})


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine for ``url`` with the site's connection settings applied."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine, "do_connect", _bounded_lock_waits)
    if engine.dialect.driver == "psycopg":
        event.listen(engine, "do_connect", _lazy_descriptions)
    event.listen(engine, "checkin", _note_return)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _bounded_lock_waits(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]
                        ) -> None:
    """Every PostgreSQL session of the site waits ``POSTGRES_LOCK_TIMEOUT_MS`` at most for a
    lock (libpq ``options``, added to any the URL gives)."""
    timeout = f"-c lock_timeout={POSTGRES_LOCK_TIMEOUT_MS}"
    params["options"] = f"{params['options']} {timeout}" if params.get("options") else timeout


def _lazy_descriptions(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
    """psycopg connections build a result's column descriptions only when they are read."""
    params["cursor_factory"] = LazyDescriptionCursor


def _note_return(_dbapi_connection: Any, record: Any) -> None:
    record.info[_RETURNED_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pool checkout hook: ping a connection that sat idle; a dead one is replaced.

    Raising ``DisconnectionError`` makes the pool discard the connection and check out
    another (SQLAlchemy docs, "Disconnect Handling - Pessimistic", custom ping).
    """
    returned = record.info.get(_RETURNED_AT)
    if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
        return  # new, or in steady use
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as exc:  # any failure means this connection is unusable
        raise DisconnectionError(f"pooled connection failed its ping: {type(exc).__name__}"
                                 ) from exc


def is_postgresql(session: Session) -> bool:
    """Tell whether the session talks to PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory the site uses (objects stay usable after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Run one transaction: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def ping(engine: Engine) -> None:
    """Run a trivial query (raises when the database does not answer)."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
