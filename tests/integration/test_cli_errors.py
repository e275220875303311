"""Every CLI error path the issue named prints one line in words, no traceback (real processes)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Case:
    """One command line, what its single error line must say, and what it must not."""

    name: str
    argv: tuple[str, ...]
    says: str
    never: str = "Traceback"


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def _provisioner(*args: str) -> list[str]:
    return [sys.executable, "-m", "provisioner.cli", *args]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("cli-errors")
    site = ["--site-dir", str(work / "site")]
    steps = [
        _provisioner("site", *site, "init"),
        _provisioner("site", *site, "firmware", "add",
                     str(REPO / "fixtures" / "stm32f103c8" / "bootloader.hex"),
                     "--kind", "bootloader-template", "--product", "P", "--version", "1.0",
                     "--profile", "stm32f103c8"),
        _provisioner("site", *site, "station", "add", "ST-1"),
        _provisioner("sim", "swd", "--profile", "stm32f103c8", "--dir", str(work / "swd")),
    ]
    for step in steps:
        done = _run(step)
        assert done.returncode == 0, done.stderr
    (work / "junk.bundle").write_text("not a bundle at all\n")
    return work


def _cases(work: Path) -> list[Case]:
    site = ("site", "--site-dir", str(work / "site"))
    return [
        Case("sim serial, unknown profile", ("sim", "serial", "--profile", "stm32f103"),
             "no profile named 'stm32f103'"),
        Case("sim swd, unknown profile over an existing board",
             ("sim", "swd", "--profile", "nosuch", "--dir", str(work / "swd")),
             "no profile named 'nosuch'", never="exists"),
        Case("flash, unknown profile", ("flash", "--profile", "nosuch", "--port", "/dev/null",
                                        "info"), "no profile named 'nosuch'",
             never="ProfileValidationError"),
        Case("order of another profile's bootloader",
             (*site, "order", "create", "--product", "P", "--profile", "stm32f411ce",
              "--quantity", "5", "--bootloader", "1.0"),
             "bootloader-template P 1.0 is registered for profile stm32f103c8, not stm32f411ce"),
        Case("add-station to no order", (*site, "order", "add-station", "o-nope", "ST-1"),
             "order o-nope does not exist"),
        Case("site init twice", (*site, "init"), "already initialised"),
        Case("enrol from a junk file", ("station", "enroll", str(work / "junk.bundle"),
                                        "--data-dir", str(work / "bench")),
             "not an enrolment bundle", never="modified"),
        Case("enrol with a wrong one-time passphrase",
             ("station", "enroll", str(work / "site" / "bundles" / "ST-1.bundle"),
              "--data-dir", str(work / "bench")), "wrong passphrase"),
    ]


CASE_NAMES = [case.name for case in _cases(Path("/"))]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_an_error_is_one_line_without_traceback(work: Path, name: str) -> None:
    case = next(c for c in _cases(work) if c.name == name)
    done = _run(_provisioner(*case.argv), env={"PROVISIONER_ENROL_PASSPHRASE": "0000-0000",
                                               "PROVISIONER_STATION_PASSPHRASE": "x" * 12})
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ")
    assert case.says in lines[0]
    assert case.never not in done.stderr


def test_debug_shows_the_traceback() -> None:
    done = _run(_provisioner("--debug", "sim", "serial", "--profile", "stm32f103"))
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "ProfileValidationError" in done.stderr


def test_a_busy_port_is_one_line(work: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _run(_provisioner("site", "--site-dir", str(work / "site"), "serve", "--port",
                                 str(port)))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "address already in use" in lines[0].lower()


@pytest.mark.parametrize("argv", [
    ("flash", "info", "--help"), ("flash", "read", "--help"), ("flash", "write", "--help"),
])
def test_flash_help_reads_without_a_profile_or_port(argv: tuple[str, ...]) -> None:
    done = _run(_provisioner(*argv))
    assert done.returncode == 0, done.stderr
    assert "Usage: provisioner flash" in done.stdout


def test_hex_generator_help_is_for_its_users() -> None:
    done = _run([sys.executable, "-m", "hw_profiles.cli", "--help"])
    assert done.returncode == 0
    assert "resolver" not in done.stdout
    assert "patch" in done.stdout


def test_operator_pin_never_on_the_command_line(work: Path, tmp_path: Path) -> None:
    site = ("site", "--site-dir", str(work / "site"))
    helped = _run(_provisioner(*site, "operator", "add", "--help"))
    assert "--pin-file" in helped.stdout
    assert "--pin TEXT" not in helped.stdout
    pin_file = tmp_path / "pin"
    pin_file.write_text("2468-1357\n")
    added = _run(_provisioner(*site, "operator", "add", "bob", "--pin-file", str(pin_file)))
    assert added.returncode == 0, added.stderr
    from_env = _run(_provisioner(*site, "operator", "reset", "bob"),
                    env={"PROVISIONER_PIN": "1357-2468"})
    assert from_env.returncode == 0, from_env.stderr


@pytest.mark.parametrize(("argv", "says"), [
    (("statoin",), "Error: No such command 'statoin' (see 'provisioner --help')."),
    (("--bogus",), "Error: No such option '--bogus' (see 'provisioner --help')."),
    (("site", "order", "create", "--product", "P"),
     "Error: Missing option '--profile' (see 'provisioner site order create --help')."),
    (("site", "--site-dir"),
     "Error: Option '--site-dir' requires an argument (add --help to the command for its "
     "usage)."),
    (("station", "run", "--count", "x"),
     "Error: Invalid value for '--count': 'x' is not a valid integer range "
     "(see 'provisioner station run --help')."),
])
def test_a_usage_error_is_one_line_naming_the_help_to_read(argv: tuple[str, ...],
                                                           says: str) -> None:
    done = _run([sys.executable, "-c", "from provisioner.cli import main; "
                 "main(prog_name='provisioner')", *argv])
    assert done.returncode == 2
    assert done.stderr.splitlines() == [says]
    assert done.stdout == ""
