"""The README's "Running it for real" section, pasted line by line into an empty directory.

Every line of the section's ```sh blocks runs through ``bash -c`` in a fresh temporary
directory, in order, with the ``provisioner`` of this checkout on ``PATH``. The test plays the
people in the walkthrough and substitutes only what it must, deterministically:

* ``site.example.net`` → ``127.0.0.1`` and port ``8443`` → a free port (the site on loopback;
  other tests may hold 8443 on a shared machine);
* ``KEY_ID`` → the manufacturer key id that the ``site init`` line printed;
* prompts are answered by the documented environment variables (``PROVISIONER_PIN``,
  ``PROVISIONER_STATION_PASSPHRASE``, and ``PROVISIONER_ENROL_PASSPHRASE`` set to the one-time
  passphrase the ``station add`` line printed: the admin reading it to the operator). Each line
  runs without a terminal and with stdin closed, so a prompt the README forgot fails the line.

``export NAME=VALUE`` lines update the environment of later lines; a line ending in ``&`` is
started in the background and counts as started at its first line on stderr (``site serve``
prints "listening on …"); background commands get Ctrl-C at the end and must stop cleanly.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Running it for real"
PIN = "4711-2342"
STATION_PASSPHRASE = "walkthrough station passphrase"


def readme_lines() -> list[str]:
    """Return the command lines of the section's ```sh blocks, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Walkthrough:
    """Runs README lines one by one, remembering the environment and what lines printed."""

    def __init__(self, work: Path, port: int) -> None:
        self.work = work
        self.port = port
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PROVISIONER_PIN": PIN,
            "PROVISIONER_STATION_PASSPHRASE": STATION_PASSPHRASE,
        }
        for name in ("PROVISIONER_ENROL_PASSPHRASE", "PROVISIONER_VIRTUAL_PROBES"):
            self.env.pop(name, None)
        self.background: list[subprocess.Popen[str]] = []
        self.key_id: str | None = None
        self.outputs: list[str] = []

    def substitute(self, line: str) -> str:
        line = line.replace("site.example.net", "127.0.0.1").replace("8443", str(self.port))
        if "KEY_ID" in line:
            assert self.key_id is not None, "KEY_ID used before site init printed it"
            line = line.replace("KEY_ID", self.key_id)
        return line

    def run(self, number: int, original: str) -> None:
        line = self.substitute(original)
        if line.startswith("export "):
            name = line.split()[1].split("=", 1)[0]
            self.env[name] = self._bash(f"{line.split('#', 1)[0]}; printf %s \"${name}\"",
                                        number, original)
            return
        if line.split("#", 1)[0].rstrip().endswith("&"):
            self._start(line.split("#", 1)[0].rstrip()[:-1], number, original)
            return
        out = self._bash(line, number, original)
        self.outputs.append(out)
        if self.key_id is None and (found := re.search(r"manufacturer key id\s+(\w+)", out)):
            self.key_id = found.group(1)
        if found := re.search(r"one-time passphrase.*: (\S+)", out):
            self.env["PROVISIONER_ENROL_PASSPHRASE"] = found.group(1)

    def _bash(self, command: str, number: int, original: str) -> str:
        done = subprocess.run(["bash", "-c", command], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=300, check=False,
                              stdin=subprocess.DEVNULL, start_new_session=True)
        assert done.returncode == 0, (
            f"README line {number} failed (exit {done.returncode}): {original}\n"
            f"stdout: {done.stdout}\nstderr: {done.stderr}"
        )
        return done.stdout

    def _start(self, command: str, number: int, original: str) -> None:
        process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=self.work,
                                   env=self.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        self.background.append(process)
        assert process.stderr is not None
        first = process.stderr.readline()
        assert first, f"README line {number} printed nothing: {original}"
        assert process.poll() is None, f"README line {number} exited: {original}: {first}"

    def stop(self) -> list[tuple[int, str]]:
        results = []
        for process in self.background:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
            results.append((process.returncode, err))
        return results


@pytest.mark.timeout(600)
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    lines = readme_lines()
    assert len(lines) >= 15, "the section lost its commands"
    walk = Walkthrough(tmp_path, _free_port())
    try:
        for number, line in enumerate(lines, start=1):
            walk.run(number, line)
    finally:
        stopped = walk.stop()
    assert [code for code, _ in stopped] == [0], stopped
    assert "stopped" in stopped[0][1]
    shown = next(out for out in walk.outputs if "authorised:" in out)
    assert re.search(r"produced:\s+2\n", shown)
    assert re.search(r"reserved:\s+0\n", shown)
    # site report's order row: authorised, produced, programmed … reserved, remaining
    assert any(re.search(r"^o-1 +P +500 +2 +2 +0 +0 +0 +0 +0 +498$", out, re.M)
               for out in walk.outputs)
    verified = next(out for out in walk.outputs if "pinned manufacturer key" in out)
    assert walk.key_id in verified
    assert not (tmp_path / "ST-1.bundle").exists(), "enrolment must consume the bundle"
    assert (tmp_path / "report.html").stat().st_size > 0


def test_every_prompting_command_has_its_non_interactive_form_documented() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8").split(SECTION, 1)[1]
    for form in ("--pin-file", "PROVISIONER_PIN", "--one-time-passphrase-file",
                 "PROVISIONER_ENROL_PASSPHRASE", "--passphrase-file",
                 "PROVISIONER_STATION_PASSPHRASE", "PROVISIONER_VIRTUAL_PROBES",
                 "add-station", "manufacturer key id"):
        assert form in text, form
    assert "boot.hex" not in text
