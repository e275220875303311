"""PostgreSQL pool: a connection that sat idle is pinged and replaced when dead; one in
steady use is not pinged (a dead one fails one statement, and the pool then starts afresh).
A reading connection autocommits, and goes back to transactions when it returns."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from site_fixtures import PG_ADMIN_DSN, postgres_database
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from provisioner.site.db import engine as engine_module


@pytest.fixture
def engine() -> Iterator[Engine]:
    with postgres_database() as url:
        made = engine_module.make_engine(url, pool_size=1)
        try:
            yield made
        finally:
            made.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(pid: int) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_idle_dead_connection_is_replaced_at_checkout(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend_pid(engine)
    _kill(first)
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.0)
    second = _backend_pid(engine)  # no error: the ping found the dead one
    assert second != first


def test_connection_in_steady_use_is_not_pinged(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 3600.0)
    first = _backend_pid(engine)
    _kill(first)
    with pytest.raises(OperationalError) as failed:
        _backend_pid(engine)  # handed out unpinged: its statement meets the dead socket
    assert failed.value.connection_invalidated
    assert _backend_pid(engine) != first  # the pool started afresh


def test_reading_connection_autocommits_and_goes_back_to_transactions(engine: Engine) -> None:
    with engine_module.reading(engine) as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert conn.connection.driver_connection.autocommit  # type: ignore[union-attr]
        reader_pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    # The same pooled connection, handed to a writer: its work is one transaction again.
    with engine.connect() as conn:
        assert int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()) == reader_pid
        assert not conn.connection.driver_connection.autocommit  # type: ignore[union-attr]
        conn.execute(text("CREATE TABLE t (n integer)"))
        conn.rollback()
        assert conn.execute(text("SELECT to_regclass('t')")).scalar_one() is None
