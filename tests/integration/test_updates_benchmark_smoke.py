"""benchmarks/updates.py still runs (at a size that takes seconds) and serves every request."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_update_benchmark_serves_every_package_in_both_answer_formats() -> None:
    for extra in ((), ("--json-answers",)):
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "updates.py"), "--per-requester", "1",
             "--skip-postgresql", *extra],
            capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        line = next(line for line in done.stdout.splitlines() if line.startswith("sqlite"))
        assert re.search(r"\(32 served, 0 refused", line), line
