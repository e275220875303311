"""Statements run on the driver's cursor (``db/direct.py``) answer as ``Connection.execute``
does: rows and type processing, engine cursor events, SQLAlchemy's exception types, and a lost
connection invalidating the pool. On PostgreSQL for real; SQLite goes through SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from site_fixtures import PG_ADMIN_DSN, postgres_database
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    TypeDecorator,
    bindparam,
    event,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound, OperationalError

from provisioner.site.db import direct
from provisioner.site.db.engine import make_engine


class _Shouted(TypeDecorator[str]):
    """A type with processors both ways: upper case in the database, lower case back."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.upper()

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else value.lower()


_META = MetaData()
_NOTES = Table("direct_notes", _META, Column("n", Integer, primary_key=True),
               Column("word", _Shouted(20)), Column("price", Numeric(6, 2, asdecimal=False)))
_INSERT = insert(_NOTES).values(n=bindparam("n"), word=bindparam("word"),
                                price=bindparam("price"))
_BY_N = select(_NOTES.c.word, _NOTES.c.price, _NOTES.c.n).where(_NOTES.c.n >= bindparam("n"))
_RAW_WORD = text("SELECT word FROM direct_notes WHERE n = :n")


@contextmanager
def _made(url: str) -> Iterator[Engine]:
    made = make_engine(url, pool_size=2) if url.startswith("postgresql") else make_engine(url)
    _META.create_all(made)
    try:
        yield made
    finally:
        made.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        with _made(f"sqlite:///{tmp_path / 'direct.db'}") as made:
            yield made
        return
    with postgres_database() as url, _made(url) as made:
        yield made


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    with postgres_database() as url, _made(url) as made:
        yield made


def test_rows_and_type_processing_match_sqlalchemy(engine: Engine) -> None:
    with engine.begin() as conn:
        for n, word, price in ((1, "ab", 2.5), (2, "cd", 3.25)):
            direct.rows(conn, _INSERT, {"n": n, "word": word, "price": price})
        stored = conn.execute(_RAW_WORD, {"n": 1}).scalar_one()
        assert stored == "AB"  # the bind processor ran on the way in
        expected = [tuple(row) for row in conn.execute(_BY_N, {"n": 1})]
        assert expected == [("ab", 2.5, 1), ("cd", 3.25, 2)]
        assert direct.rows(conn, _BY_N, {"n": 1}) == expected
        assert direct.one(conn, _BY_N, {"n": 2}) == ("cd", 3.25, 2)
        assert direct.one_or_none(conn, _BY_N, {"n": 3}) is None
        with pytest.raises(NoResultFound):
            direct.one(conn, _BY_N, {"n": 3})
        with pytest.raises(MultipleResultsFound):
            direct.one_or_none(conn, _BY_N, {"n": 1})
        assert direct.rows(conn, select(literal(7)), {}) == [(7,)]


def test_engine_cursor_events_see_every_statement(engine: Engine) -> None:
    seen: list[tuple[str, str]] = []

    def before(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        seen.append(("before", statement))

    def after(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        seen.append(("after", statement))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    with engine.begin() as conn:
        direct.rows(conn, _INSERT, {"n": 5, "word": "x", "price": 1})
    # SQLite's BEGIN IMMEDIATE is seen too; the statement itself exactly once each way.
    assert [when for when, statement in seen
            if statement.startswith("INSERT INTO direct_notes")] == ["before", "after"]


def test_constraint_violation_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    with engine.begin() as conn:
        direct.rows(conn, _INSERT, {"n": 9, "word": "x", "price": 1})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        direct.rows(conn, _INSERT, {"n": 9, "word": "y", "price": 2})
    with engine.connect() as conn:  # the failed transaction was rolled back, the first kept
        assert conn.execute(_RAW_WORD, {"n": 9}).scalar_one() == "X"


def test_a_connection_keeps_one_cursor_and_a_failed_statement_leaves_it_usable(
    engine: Engine,
) -> None:
    cursors: list[Any] = []  # the objects themselves: an id could be reused
    event.listen(engine, "before_cursor_execute",
                 lambda _c, cursor, statement, *_a: cursors.append(cursor)
                 if "direct_notes" in statement else None)
    with engine.connect() as conn:
        with conn.begin():
            direct.rows(conn, _INSERT, {"n": 4, "word": "x", "price": 1})
            assert direct.rows(conn, _BY_N, {"n": 4}) == [("x", 1.0, 4)]
        with conn.begin():
            direct.rows(conn, _INSERT, {"n": 5, "word": "z", "price": 3})
        if engine.dialect.driver == "psycopg":  # made once for the connection
            assert all(cursor is cursors[0] for cursor in cursors)
        with pytest.raises(IntegrityError), conn.begin():
            direct.rows(conn, _INSERT, {"n": 4, "word": "y", "price": 2})
        with conn.begin():  # SQLAlchemy closed the failed statement's cursor: a new one
            assert direct.rows(conn, _BY_N, {"n": 4}) == [("x", 1.0, 4), ("z", 3.0, 5)]


def test_lost_connection_invalidates_the_pool(pg_engine: Engine) -> None:
    engine = pg_engine
    with engine.connect() as conn:
        assert direct.rows(conn, select(literal(7)), {}) == [(7,)]  # its cursor is made
        first = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        with pytest.raises(OperationalError) as raised:
            direct.rows(conn, _BY_N, {"n": 0})
        assert raised.value.connection_invalidated
    with engine.connect() as conn:  # a fresh connection, not the dead one, and its cursor
        assert int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()) != first
        assert direct.rows(conn, select(literal(8)), {}) == [(8,)]
