"""Alembic migrations: empty → head → base on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from site_fixtures import postgres_database
from sqlalchemy import inspect, text

from provisioner.site.db import migrate
from provisioner.site.db.engine import make_engine, sqlite_url
from provisioner.site.db.models import Base

TABLES = {table.name for table in Base.metadata.sorted_tables}


def _round_trip(url: str) -> None:
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == set()
        migrate.upgrade(engine)
        found = set(inspect(engine).get_table_names())
        assert found == TABLES | {"alembic_version"}
        with engine.connect() as connection:
            head = connection.execute(text("SELECT seq, hash FROM audit_head")).one()
            assert tuple(head) == (0, "0" * 64)
        # The migrated schema matches the ORM: same columns per table.
        inspector = inspect(engine)
        for table in Base.metadata.sorted_tables:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name for c in table.columns}, table.name
        migrate.downgrade(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_sqlite_upgrade_and_downgrade(tmp_path: Path) -> None:
    _round_trip(sqlite_url(str(tmp_path / "site.db")))


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(str(tmp_path / "site.db")))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


@pytest.mark.slow
def test_postgresql_upgrade_and_downgrade() -> None:
    with postgres_database() as url:
        _round_trip(url)
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            with engine.connect() as connection:
                first = connection.execute(text("SELECT nextval('device_id_seq')")).scalar()
                assert first == 1
        finally:
            engine.dispose()
