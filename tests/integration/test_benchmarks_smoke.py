"""The benchmarks still run against today's schema and key seam (at a size that takes seconds):
a benchmark that rots is found here, not by the next person who needs its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from site_fixtures import postgres_database

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_audit_benchmark_verifies_and_reports_a_small_record() -> None:
    with postgres_database():  # skips, saying why, when PostgreSQL does not answer
        printed = _run("audit.py", "--entries", "300", "--report-entries", "2000")
    assert "anchored (default)" in printed
    for engine in ("sqlite", "postgresql"):
        assert f"site report, {engine:10}: 2000 entries" in printed


def test_the_key_benchmark_times_every_operation_with_files_and_the_token() -> None:
    printed = _run("keys.py", "--rounds", "20").splitlines()
    for operation in ("wrap device key", "unwrap device key", "sign audit entry",
                      "issue station cert"):
        line = next(line for line in printed if line.startswith(operation))
        assert "files" in line
        assert "token/files" in line


def test_the_site_benchmark_prints_in_process_cost_and_lock_held_time() -> None:
    with postgres_database():
        printed = _run("site.py", "--in-process", "--grants-per-station", "1").splitlines()
    for engine in ("sqlite", "postgresql"):
        line = next(line for line in printed if line.startswith(f"{engine:<11} in-process"))
        assert "issue_grant CPU" in line
        assert "order lock held: grant" in line
        assert "nan" not in line  # the lock statement was seen for every grant
