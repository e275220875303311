"""SQLite: a read-only connection reads while a writer holds the write lock; others wait."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from provisioner.site.db.engine import make_engine, reading, sqlite_url


def _read_in_thread(run: threading.Thread, seconds: float) -> bool:
    run.start()
    run.join(seconds)
    return not run.is_alive()


def test_read_only_connection_does_not_wait_for_the_writer(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(str(tmp_path / "site.db")))
    with engine.begin() as setup:
        setup.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        setup.exec_driver_sql("INSERT INTO t VALUES (1)")
    seen: list[int] = []

    def read() -> None:
        with reading(engine) as conn:
            seen.append(int(conn.execute(text("SELECT n FROM t")).scalar_one()))

    writer = engine.connect()
    try:
        writer.begin()
        writer.exec_driver_sql("UPDATE t SET n = 2")  # holds the write lock, not committed
        assert _read_in_thread(threading.Thread(target=read), 5.0)
        assert seen == [1]  # the committed snapshot, not the writer's change
        blocked = threading.Thread(target=lambda: engine.connect().begin().close())
        # A connection that may write asks for the lock up front and waits for the writer.
        assert not _read_in_thread(blocked, 0.5)
    finally:
        writer.rollback()
        writer.close()
    blocked.join(10)
    assert not blocked.is_alive()
    engine.dispose()
