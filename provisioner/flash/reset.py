"""BOOT0 and NRST through the USB-serial adapter's RTS/DTR lines, as the profile wires them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, Protocol

from hw_profiles.profile import PinWiring, SerialTransport
from provisioner.errors import OperatorActionRequired

RESET_PULSE_S = 0.05
BOOT_SETTLE_S = 0.1  # the ROM bootloader needs a few ms after reset before it listens

ENTER_BOOTLOADER = "hold BOOT0 high, press RESET, then release it"
RUN_APPLICATION = "set BOOT0 low and press RESET to start the application"


class LineDriver(Protocol):
    """Something that can drive a modem line (the serial link)."""

    def set_line(self, line: Literal["rts", "dtr"], asserted: bool) -> None:
        """Assert or release ``line``."""
        ...


def is_wired(serial_profile: SerialTransport) -> bool:
    """Return True when both BOOT0 and NRST hang on a modem line."""
    return serial_profile.boot0.line != "none" and serial_profile.reset.line != "none"


def drive(driver: LineDriver, wiring: PinWiring, high: bool) -> None:
    """Drive a wired pin to logic ``high`` (or low), honouring the line's polarity."""
    if wiring.line != "none":
        driver.set_line(wiring.line, high == wiring.active_high)


def enter_bootloader(driver: LineDriver, serial_profile: SerialTransport,
                     operator_prompt: Callable[[str], None] | None,
                     sleep: Callable[[float], None] = time.sleep) -> None:
    """Restart the chip into its ROM bootloader (BOOT0 high during reset).

    Raises:
        OperatorActionRequired: a pin is not wired and nobody can be asked.
    """
    _restart(driver, serial_profile, operator_prompt, sleep, boot0_high=True,
             action=ENTER_BOOTLOADER)


def run_application(driver: LineDriver, serial_profile: SerialTransport,
                    operator_prompt: Callable[[str], None] | None,
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Restart the chip from flash (BOOT0 low during reset), or ask the operator to."""
    _restart(driver, serial_profile, operator_prompt, sleep, boot0_high=False,
             action=RUN_APPLICATION)


def _restart(driver: LineDriver, serial_profile: SerialTransport,
             operator_prompt: Callable[[str], None] | None, sleep: Callable[[float], None],
             *, boot0_high: bool, action: str) -> None:
    if not is_wired(serial_profile):
        if operator_prompt is None:
            raise OperatorActionRequired(action)
        operator_prompt(action)
        return
    drive(driver, serial_profile.boot0, boot0_high)
    drive(driver, serial_profile.reset, False)
    sleep(RESET_PULSE_S)
    drive(driver, serial_profile.reset, True)
    sleep(BOOT_SETTLE_S)
