"""The site's PostgreSQL cursor: its lazy description answers as psycopg's own does, and SQLAlchemy
results (names, values, types) through the site's engine are unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from site_fixtures import postgres_database
from sqlalchemy import Engine, text

from provisioner.site.db.engine import make_engine
from provisioner.site.db.pg_cursor import DescriptionMoved, LazyDescription, LazyDescriptionCursor

_WIDE = ("SELECT 1::int AS n, 'x'::varchar(12) AS name, 2.5::numeric(6,2) AS price, "
         "NULL::bytea AS blob, now() AS at")


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _libpq_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_description_matches_psycopgs_own(database: str) -> None:
    dsn = _libpq_dsn(database)
    with psycopg.connect(dsn) as plain, psycopg.connect(
            dsn, cursor_factory=LazyDescriptionCursor) as lazy:
        expected = plain.execute(_WIDE).description
        cursor = lazy.execute(_WIDE)
        described = cursor.description
        assert isinstance(described, LazyDescription)
        assert len(described) == len(expected or []) == 5
        assert [tuple(column) for column in described] == [tuple(c) for c in expected or []]
        assert described[1].name == "name"
        assert described[-1].name == "at"
        assert [column.name for column in described[1:3]] == ["name", "price"]


def test_statement_without_rows_has_no_description(database: str) -> None:
    with psycopg.connect(_libpq_dsn(database), cursor_factory=LazyDescriptionCursor) as conn:
        cursor = conn.execute("CREATE TEMPORARY TABLE t (n int)")
        assert cursor.description is None
        assert conn.execute("INSERT INTO t VALUES (1)").description is None
        # No row but a result with columns: described, as psycopg does ("SELECT ;" too).
        empty = conn.execute("SELECT n FROM t WHERE false")
        assert [column.name for column in empty.description or []] == ["n"]


def test_columns_first_read_after_the_cursor_moved_on_are_refused(database: str) -> None:
    with psycopg.connect(_libpq_dsn(database), cursor_factory=LazyDescriptionCursor) as conn:
        cursor = conn.cursor()
        described = cursor.execute(_WIDE).description
        assert described is not None
        cursor.execute("SELECT 'other' AS other")
        assert len(described) == 5  # the length is known without the columns
        with pytest.raises(DescriptionMoved):
            described[0]
        kept = cursor.description
        assert kept is not None
        assert kept[0].name == "other"
        cursor.execute(_WIDE)
        assert kept[0].name == "other"  # built before the move: unchanged


def test_site_engine_uses_it_and_results_are_unchanged(database: str) -> None:
    engine: Engine = make_engine(database, pool_size=1)
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            assert isinstance(driver.cursor(), LazyDescriptionCursor)
            for _ in range(3):  # first run builds SQLAlchemy's metadata; later ones reuse it
                row = conn.execute(text(_WIDE)).one()
                assert row._fields == ("n", "name", "price", "blob", "at")
                assert (row.n, row.name, str(row.price), row.blob) == (1, "x", "2.50", None)
                assert row.at.tzinfo is not None
    finally:
        engine.dispose()
