"""docs/updates.md runs as written: every bash block, in order, in one shell."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "updates.md"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_walkthrough_runs_and_shows_install_clone_and_rollbacks(tmp_path: Path) -> None:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 6
    # Fixed ports in the page; free ones here (other test runs may share the machine).
    script = "\n".join(blocks).replace("8443", str(_free_port())).replace(
        "8444", str(_free_port())).replace('cd "$(mktemp -d)"', f"cd {tmp_path}")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                          text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert "device installed (reason none); now runs 1.1.0" in out
    assert "site refused: already_delivered" in out
    assert "rolled_back (interrupted)" in out
    assert "device rolled_back (reason self_test_failed); now runs 1.1.0" in out
    assert "alarm_clone" in out
