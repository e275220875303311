"""The virtual serial-board scenarios on a real chip in its ROM bootloader (``pytest -m hil``).

PROVISIONER_HIL_SERIAL_PORT names the USB-serial port wired to the board (BOOT0/NRST on
RTS/DTR as the profile says, else the test asks on the terminal) and PROVISIONER_HIL_PROFILE its
profile. These tests erase the chip and set then remove readout protection (which mass-erases).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import SERIAL_PORT_VARIABLE, fixture_image, hil_setting

from hw_profiles import Profile
from provisioner.errors import ReadoutProtected, VerifyMismatch
from provisioner.flash.backend import MemorySegment, opened
from provisioner.flash.serial_rom.backend import SerialRomBackend

pytestmark = pytest.mark.hil


def _prompt(action: str) -> None:
    input(f"\n{action}, then press Enter ")


def _backend(profile: Profile) -> SerialRomBackend:
    return SerialRomBackend(hil_setting(SERIAL_PORT_VARIABLE), profile, operator_prompt=_prompt)


@pytest.fixture
def backend(hil_profile: Profile) -> Iterator[SerialRomBackend]:
    serial_backend = _backend(hil_profile)
    with opened(serial_backend):
        yield serial_backend


def test_identifies_the_chip_and_reads_a_stable_uid(backend: SerialRomBackend,
                                                    hil_profile: Profile) -> None:
    assert hil_profile.serial is not None
    assert backend.product_id == hil_profile.serial.product_id
    uid = backend.read_uid()
    assert len(uid) == hil_profile.chip_uid.size_bytes
    assert backend.read_uid() == uid


def test_write_read_back_and_verify_catches_a_flipped_byte(backend: SerialRomBackend,
                                                           hil_profile: Profile) -> None:
    segments = fixture_image(hil_profile)
    backend.erase([(s.start, s.end) for s in segments])
    backend.program(segments)
    backend.verify(segments)
    first = segments[0]
    assert backend.read(first.start, len(first.data)) == first.data
    flipped = bytearray(first.data)
    flipped[0x123] ^= 0x40
    with pytest.raises(VerifyMismatch) as caught:
        backend.verify([MemorySegment(first.start, flipped)])
    assert caught.value.address == first.start + 0x123


def test_protect_refuses_reads_then_unprotect_erases(hil_profile: Profile) -> None:
    segments = fixture_image(hil_profile)
    with opened(_backend(hil_profile)) as backend:
        backend.erase([(s.start, s.end) for s in segments])
        backend.program(segments)
        backend.protect(1)
        with pytest.raises(ReadoutProtected):
            backend.read(hil_profile.flash.base, 16)
        backend.protect(0)
        size = len(segments[0].data)
        assert backend.read(segments[0].start, size) == b"\xff" * size
