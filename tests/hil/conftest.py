"""Shared hardware-in-the-loop fixtures: boards named by environment variables, else skip."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from hex_generator import load
from hw_profiles import Profile, load_profile
from provisioner.flash.backend import MemorySegment

PROFILE_VARIABLE = "PROVISIONER_HIL_PROFILE"
SERIAL_PORT_VARIABLE = "PROVISIONER_HIL_SERIAL_PORT"
PROBE_VARIABLE = "PROVISIONER_HIL_PROBE"


def hil_setting(name: str) -> str:
    """Return environment variable ``name``, or skip the test naming the missing variable."""
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.skip(f"set {name} to run this hardware-in-the-loop test")
    return value


@pytest.fixture
def hil_env() -> Callable[[str], str]:
    """The setting reader, for tests that need a variable of their own."""
    return hil_setting


@pytest.fixture
def hil_profile() -> Profile:
    """The profile of the attached board (PROVISIONER_HIL_PROFILE)."""
    return load_profile(hil_setting(PROFILE_VARIABLE))


def fixture_image(profile: Profile) -> list[MemorySegment]:
    """The profile's fixture bootloader merged with its application, as segments."""
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / profile.name
    merged = load(fixtures / "bootloader.hex").merge(load(fixtures / "application.hex"))
    return [MemorySegment(s.start, bytes(s.data)) for s in merged.segments()]
