"""BOOT0/NRST sequencing through RTS/DTR honours the profile's wiring and polarity."""

from __future__ import annotations

from typing import Literal

import pytest

from hw_profiles.profile import PinWiring, SerialTransport
from provisioner.errors import OperatorActionRequired
from provisioner.flash import reset


class RecordingLines:
    """Remembers every line change, in order."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, bool]] = []

    def set_line(self, line: Literal["rts", "dtr"], asserted: bool) -> None:
        self.changes.append((line, asserted))


def _serial(boot0: PinWiring, nrst: PinWiring) -> SerialTransport:
    return SerialTransport(protocol="an3155", baud=115200, parity="even", product_id=0x410,
                           boot0=boot0, reset=nrst)


def test_active_low_adapter_enters_the_bootloader() -> None:
    lines = RecordingLines()
    serial = _serial(PinWiring("rts", False), PinWiring("dtr", False))
    reset.enter_bootloader(lines, serial, None, sleep=lambda _s: None)
    # BOOT0 high = RTS released; NRST low = DTR asserted, then released
    assert lines.changes == [("rts", False), ("dtr", True), ("dtr", False)]


def test_active_high_wiring_runs_the_application() -> None:
    lines = RecordingLines()
    serial = _serial(PinWiring("dtr", True), PinWiring("rts", True))
    reset.run_application(lines, serial, None, sleep=lambda _s: None)
    assert lines.changes == [("dtr", False), ("rts", False), ("rts", True)]


def test_unwired_pins_ask_the_operator_or_refuse() -> None:
    serial = _serial(PinWiring("none", True), PinWiring("dtr", False))
    asked: list[str] = []
    reset.enter_bootloader(RecordingLines(), serial, asked.append, sleep=lambda _s: None)
    assert asked == [reset.ENTER_BOOTLOADER]
    with pytest.raises(OperatorActionRequired) as exc:
        reset.enter_bootloader(RecordingLines(), serial, None, sleep=lambda _s: None)
    assert "BOOT0" in exc.value.action
