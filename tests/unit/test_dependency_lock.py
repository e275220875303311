"""The committed lock pins, with hashes, a version of every dependency pyproject.toml declares
that satisfies its range, and the environment the tests run in is exactly the lock."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
LOCK = ROOT / "requirements" / "test.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def locked() -> dict[str, tuple[str, int]]:
    """Return {canonical name: (version, number of hashes)} from the lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current: str | None = None
    for line in LOCK.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match[1])
            pins[current] = (match[2], 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return pins


def declared() -> list[Requirement]:
    """Return every requirement pyproject.toml and requirements/build.in declare."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"].values()
    lines = [*project["project"]["dependencies"], *[dep for deps in extras for dep in deps],
             *project["build-system"]["requires"]]
    build_in = (ROOT / "requirements" / "build.in").read_text().splitlines()
    lines += [line for line in build_in if line.strip() and not line.startswith("#")]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_every_declared_dependency_is_locked_within_its_range(requirement: Requirement) -> None:
    pins = locked()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement} is declared but not in {LOCK.name}: refresh the lock"
    version, _ = pins[name]
    assert requirement.specifier.contains(version, prereleases=True), (
        f"{LOCK.name} pins {name}=={version}, outside pyproject's {requirement}")
    for extra in requirement.extras:
        extra_deps = [Requirement(dep) for dep in metadata.requires(requirement.name) or []
                      if f'extra == "{extra}"' in dep]
        for dep in extra_deps:
            assert canonicalize_name(dep.name) in pins, f"{requirement}: {dep.name} not locked"


def test_every_pin_carries_hashes() -> None:
    unhashed = [name for name, (_, hashes) in locked().items() if hashes == 0]
    assert not unhashed, f"pins without --hash (pip --require-hashes refuses them): {unhashed}"


def test_the_running_environment_is_the_lock() -> None:
    drift = {}
    for name, (version, _) in locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            drift[name] = f"locked {version}, installed {installed}"
    assert not drift, f"not the locked environment (run bash tests/run_all.sh): {drift}"
