"""The virtual-board SWD scenarios on a real chip behind a real probe (``pytest -m hil``).

PROVISIONER_HIL_PROBE names the probe's unique ID (as ``pyocd list`` shows it) and
PROVISIONER_HIL_PROFILE the hardware profile of the chip wired to it. These tests erase the chip
and set then remove readout protection (which mass-erases it again).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hex_generator import load
from hw_profiles import Profile, load_profile
from provisioner.errors import ReadoutProtected, VerifyMismatch
from provisioner.flash.backend import MemorySegment, opened
from provisioner.flash.swd import SwdBackend

pytestmark = pytest.mark.hil


def _setting(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.skip(f"set {name} to run SWD hardware-in-the-loop tests")
    return value


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(_setting("PROVISIONER_HIL_PROFILE"))


@pytest.fixture
def backend(profile: Profile) -> Iterator[SwdBackend]:
    backend = SwdBackend(_setting("PROVISIONER_HIL_PROBE"), profile)
    with opened(backend):
        yield backend


def image(profile: Profile) -> list[MemorySegment]:
    """The profile's fixture bootloader + application (one contiguous segment)."""
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / profile.name
    merged = load(fixtures / "bootloader.hex").merge(load(fixtures / "application.hex"))
    segments = [MemorySegment(s.start, bytes(s.data)) for s in merged.segments()]
    assert len(segments) == 1
    return segments


def test_uid_is_readable_and_stable(backend: SwdBackend, profile: Profile) -> None:
    uid = backend.read_uid()
    assert len(uid) == profile.chip_uid.size_bytes
    assert backend.read_uid() == uid


def test_write_read_back_and_verify_catches_a_flipped_byte(backend: SwdBackend,
                                                           profile: Profile) -> None:
    segments = image(profile)
    start = segments[0].start
    backend.erase(None)
    backend.program(segments)
    backend.verify(segments)
    assert backend.read(start, len(segments[0].data)) == segments[0].data
    flipped = bytearray(segments[0].data)
    flipped[0x2123] ^= 0x40
    with pytest.raises(VerifyMismatch) as caught:
        backend.verify([MemorySegment(start, flipped)])
    assert caught.value.address == start + 0x2123


def test_protect_refuses_reads_then_unprotect_erases(profile: Profile) -> None:
    probe = _setting("PROVISIONER_HIL_PROBE")
    backend = SwdBackend(probe, profile)
    with opened(backend):
        backend.erase(None)
        backend.program(image(profile))
        backend.protect(1)
        assert backend.is_readout_protected()
        with pytest.raises(ReadoutProtected):
            backend.read(profile.flash.base, 16)
    backend = SwdBackend(probe, profile)
    with opened(backend):
        backend.protect(0)
        assert not backend.is_readout_protected()
        size = len(image(profile)[0].data)
        assert backend.read(profile.flash.base, size) == b"\xff" * size
