"""The C reference bootloader on a real blue pill: program it, reset, read its banner (``-m hil``).

PROVISIONER_HIL_SERIAL_PORT names the USB-serial adapter wired to USART1 with BOOT0/NRST on
RTS/DTR (docs/hil.md); PROVISIONER_HIL_PROFILE must be ``stm32f103c8`` (the only profile with a
C bootloader). The test programs the chip through its ROM bootloader (AN3155, 8E1), restarts it
from flash and reads the bootloader's console (115200 8N1) on the same adapter.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Literal

import pytest
import serial
from conftest import SERIAL_PORT_VARIABLE, hil_setting

from hex_generator import load, patch
from hw_profiles import Profile
from provisioner.flash.backend import MemorySegment, opened
from provisioner.flash.reset import run_application
from provisioner.flash.serial_rom.backend import SerialRomBackend

pytestmark = pytest.mark.hil
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "stm32f103c8"
BANNER_TIMEOUT_S = 5.0


class _Lines:
    """pyserial's modem lines as the reset helper drives them."""

    def __init__(self, port: serial.Serial) -> None:
        self._port = port

    def set_line(self, line: Literal["rts", "dtr"], asserted: bool) -> None:
        setattr(self._port, line, asserted)


def _console_after_reset(port_name: str, profile: Profile, until: bytes) -> bytes:
    assert profile.serial is not None
    with serial.Serial(port_name, 115200, timeout=0.1) as port:
        port.reset_input_buffer()
        run_application(_Lines(port), profile.serial, lambda action: input(f"\n{action}, Enter "))
        received = bytearray()
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while until not in received and time.monotonic() < deadline:
            received += port.read(256)
        return bytes(received)


def test_a_provisioned_blue_pill_prints_its_device_id_and_starts_the_application(
        hil_profile: Profile) -> None:
    if hil_profile.name != "stm32f103c8":
        pytest.skip(f"the C bootloader is built for stm32f103c8, not {hil_profile.name}")
    port_name = hil_setting(SERIAL_PORT_VARIABLE)
    device_id = 0x00C0FFEE
    image = patch(load(FIXTURES / "bootloader.hex"), hil_profile.patch_layout(), device_id,
                  secrets.token_bytes(hil_profile.key_size_bytes))
    image = image.merge(load(FIXTURES / "application.hex"))
    segments = [MemorySegment(s.start, bytes(s.data)) for s in image.segments()]
    with opened(SerialRomBackend(port_name, hil_profile,
                                 operator_prompt=lambda a: input(f"\n{a}, Enter "))) as rom:
        rom.erase([(s.start, s.end) for s in segments], lambda event: None)
        rom.program(segments, lambda event: None)
        rom.verify(segments, lambda event: None)
    text = _console_after_reset(port_name, hil_profile, b"running\r\n").decode("ascii", "replace")
    assert f"provisioner-bootloader 1.0.0 device_id {device_id} (0x{device_id:08X})" in text
    assert "booting slot A at 0x08006000" in text
    assert "application 1.0.0 running" in text
