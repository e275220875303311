"""Run a virtual STM32F1 board's firmware from reset, its USART1 on a pty or in memory.

The debugger path (pyOCD) only runs the core while it polls; this runs it on its own, the way
a powered board with nobody attached does, so the reference bootloader's banner, its refusals
and the application it starts can be watched (``provisioner sim boot``) and tested.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass

from provisioner.sim.stm32f1_peripherals import Usart
from provisioner.sim.swd_board import BoardStateError, VirtualSwdBoard

SLICE_INSTRUCTIONS = 20_000


@dataclass(frozen=True, slots=True)
class BootResult:
    """What a run produced: the USART1 output and why it stopped."""

    output: bytes
    instructions: int
    stopped: str  # "pattern", "budget", "locked_up", "halted", "stop"

    @property
    def text(self) -> str:
        """The output as text (the bootloader prints ASCII)."""
        return self.output.decode("ascii", errors="replace")


def _usart(board: VirtualSwdBoard) -> Usart:
    if board.peripherals is None:
        raise BoardStateError(f"{board.spec.profile_name}: no USART1 is emulated for this chip")
    return board.peripherals.usart1


def run_board(board: VirtualSwdBoard, *, max_instructions: int, until: bytes | None = None,
              stop: threading.Event | None = None,
              on_slice: Callable[[], None] | None = None) -> BootResult:
    """Run from the board's current state until ``until`` appears on USART1, or the budget.

    ``max_instructions`` bounds the run (instructions the core executes; a core parked in a
    loop uses the budget up, which is how a refusal that waits forever ends).
    """
    usart = _usart(board)
    start = len(usart.transmitted)
    core = board.core
    executed = 0
    stopped = "budget"
    while executed < max_instructions:
        if stop is not None and stop.is_set():
            stopped = "stop"
            break
        if core.locked_up:
            stopped = "locked_up"
            break
        if core.halted:
            stopped = "halted"
            break
        step = min(SLICE_INSTRUCTIONS, max_instructions - executed)
        core.run_slice(step)
        executed += step
        if on_slice is not None:
            on_slice()
        if until is not None and until in usart.transmitted[start:]:
            stopped = "pattern"
            break
    return BootResult(bytes(usart.transmitted[start:]), executed, stopped)


class UsartPty:
    """USART1 bridged to a pseudo-terminal: TX bytes to the master, master input to RX."""

    def __init__(self, usart: Usart, echo: Callable[[bytes], None] | None = None) -> None:
        self._usart = usart
        self._echo = echo
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name=f"usart1 {self.port}",
                                        daemon=True)
        usart.on_transmit = self._transmit
        self._thread.start()

    def _transmit(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # nobody holds the port: dropped, as on a real pin
            os.write(self._master, data)
        if self._echo is not None:
            self._echo(data)

    def _pump(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if ready:
                try:
                    self._usart.receive(os.read(self._master, 4096))
                except OSError:
                    continue

    def close(self) -> None:
        """Stop bridging and close the pseudo-terminal."""
        self._stop.set()
        self._thread.join(timeout=2)
        self._usart.on_transmit = None
        for fd in (self._master, self._slave):
            os.close(fd)


def board_from_flash(profile_name: str, flash: bytes, chip_uid: bytes, *,
                     power_loss_after_bytes: int | None = None) -> VirtualSwdBoard:
    """Power on an emulated chip holding ``flash`` (e.g. what a serial board got programmed).

    ``power_loss_after_bytes`` cuts the supply once that many flash bytes were programmed.
    """
    from hw_profiles import load_profile
    from provisioner.sim.swd_board import ChipSpec, default_options
    from provisioner.sim.swd_dap import BoardFaults

    spec = ChipSpec.from_profile(load_profile(profile_name))
    return VirtualSwdBoard(spec, chip_uid=chip_uid, option_bytes=default_options(spec.family),
                           flash_content=flash,
                           faults=BoardFaults(power_loss_after_bytes=power_loss_after_bytes))
