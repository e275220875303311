"""SVG snapshots of the station UI at 80x24, driven by a scripted, deterministic runner.

The end-to-end Pilot tests (test_station_ui_flow.py) use the real StationRunner, TLS site and
virtual boards. A snapshot must be byte-for-byte repeatable, which real chip UIDs, device IDs,
thread interleaving and wall-clock times are not; so here ``ScriptedRunner`` implements the
StationRunner methods the UI calls, emitting the same event types in a fixed order: boards
take turns (board i starts when board i-1 has finished), the log clock is fixed and the
cursor does not blink. Snapshots are awaited on messages and worker completion, never sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import cast

from textual.pilot import Pilot

from provisioner import wire
from provisioner.errors import AuthenticationFailed, OperatorLocked, SiteUnreachable
from provisioner.flash.backend import FlashBackend, Operation, ProgressEvent
from provisioner.station.engine import AttemptState
from provisioner.station.events import (
    BoardFinished,
    BoardProgress,
    BoardUpdate,
    Listener,
)
from provisioner.station.ui.app import StationApp
from provisioner.station.ui.screens.bench import BenchScreen

ORDER_ID = "o-5a1e0c0ffee1"
PIN = "482913"
FLASH_SIZE_BYTES = 0x10000
FIXED_TIME = datetime(2026, 11, 23, 9, 30, 0)  # log stamps are local time

_FLOW = (
    (AttemptState.detected, "board detected"),
    (AttemptState.uid_read, "asking the site for a device ID"),
    (AttemptState.granted, "granted device ID {device_id}"),
    (AttemptState.key_derived, "image ready"),
    (AttemptState.flashing, "erasing and programming"),
)


class ScriptedRunner:
    """The StationRunner methods the UI calls, with a fixed script per location.

    ``script`` maps a location to ``"pass"``, a failure code, or ``"hold"`` (stop at 50 %
    of programming until ``release`` is set or the app is told to exit, so that the app's
    shutdown after the screenshot does not wait on the held board). ``quantity`` units
    are authorised.
    """

    def __init__(self, script: Mapping[str, str], quantity: int) -> None:
        self.script = dict(script)
        self.quantity = quantity
        self.produced = 0
        self.reserved = 0  # boards between their grant and their report
        self.site_down = False  # after a "report_pending" board: the site stopped answering
        self.held = threading.Event()
        self.release = threading.Event()
        self.app: StationApp | None = None
        self._turn = 0
        self._order = list(script)
        self._cond = threading.Condition()

    def sign_in(self, operator_id: str, pin: str) -> None:
        if pin != PIN:
            raise AuthenticationFailed("unknown operator or wrong PIN")
        if operator_id == "operator-9":
            raise OperatorLocked("operator operator-9 locked out for 15 minutes after 5 failures")

    def list_orders(self) -> list[wire.OrderSummary]:
        with self._cond:  # answer before the run or after it, never half-way (deterministic)
            self._cond.wait_for(lambda: self._turn in (0, len(self._order))
                                or self.held.is_set(), timeout=30)
            produced, reserved = self.produced, self.reserved
        if self.site_down:
            raise SiteUnreachable("https://127.0.0.1:8443", "ConnectError")
        return [wire.OrderSummary(
            order_id=ORDER_ID, product="demo-widget", profile="stm32f103c8",
            profile_sha256="cd" * 32, authorised_quantity=self.quantity, produced=produced,
            reserved=reserved, remaining=self.quantity - produced - reserved,
            status=wire.OrderStatus.open)]

    def settle_pending(self) -> int:
        return 0

    def recover(self, attached: Mapping[str, FlashBackend], listener: Listener
                ) -> list[BoardFinished]:
        return []

    def provision_board(self, order_id: str, location: str, backend: FlashBackend,
                        listener: Listener) -> BoardFinished:
        number = self._order.index(location)
        with self._cond:
            self._cond.wait_for(lambda: self._turn == number)
        try:
            return self._play(order_id, location, number, listener)
        finally:
            with self._cond:
                self._turn += 1
                self._cond.notify_all()

    def _play(self, order_id: str, location: str, number: int, listener: Listener
              ) -> BoardFinished:
        outcome = self.script[location]
        attempt_id = f"attempt-{number}"
        chip_uid = f"{0x3F0A1B00 + number:08x}" * 3
        device_id = 1000 + number
        if outcome == "quota_exhausted":
            listener(BoardUpdate(location, attempt_id, AttemptState.detected, None, None, None,
                                 "board detected"))
            return self._end(listener, BoardFinished(
                location, attempt_id, AttemptState.refused, False, outcome,
                f"quota_exhausted: order {order_id} has no units left", chip_uid, None))
        for state, text in _FLOW:
            listener(BoardUpdate(location, attempt_id, state, chip_uid, device_id, number,
                                 text.format(index=number, device_id=device_id)))
            if state is AttemptState.granted:
                with self._cond:
                    self.reserved += 1
        for operation in (Operation.erase, Operation.program, Operation.verify):
            for done in range(0, FLASH_SIZE_BYTES + 1, 0x400):
                listener(BoardProgress(location, ProgressEvent(operation, done,
                                                               FLASH_SIZE_BYTES)))
                if outcome == "hold" and operation is Operation.program and \
                        done == FLASH_SIZE_BYTES // 2:
                    self.held.set()
                    with self._cond:
                        self._cond.notify_all()
                    self._hold()
            if outcome == "verify_mismatch" and operation is Operation.program:
                with self._cond:
                    self.reserved -= 1
                return self._end(listener, BoardFinished(
                    location, attempt_id, AttemptState.failed, False, outcome,
                    "verify mismatch at 0x08000400: expected 0x5a, found 0xff", chip_uid,
                    device_id))
        listener(BoardUpdate(location, attempt_id, AttemptState.reported, chip_uid, device_id,
                             number, "reporting to the site"))
        if outcome == "report_pending":  # the site went away before it took the report
            self.site_down = True
            return self._end(listener, BoardFinished(
                location, attempt_id, AttemptState.reported, False, "site_unreachable",
                "site https://127.0.0.1:8443 unreachable: ConnectError", chip_uid, device_id,
                report_pending=True))
        with self._cond:
            self.produced += 1
            self.reserved -= 1
        return self._end(listener, BoardFinished(location, attempt_id, AttemptState.reported,
                                                 True, None, "programmed", chip_uid, device_id))

    def _hold(self) -> None:
        for _ in range(600):
            if self.release.wait(0.05) or (self.app is not None
                                           and self.app.return_value is not None):
                return

    @staticmethod
    def _end(listener: Listener, result: BoardFinished) -> BoardFinished:
        listener(result)
        return result


def make_app(runner: ScriptedRunner) -> StationApp:
    """The app over the scripted runner (which never touches the backends it is handed)."""
    boards = dict.fromkeys(runner.script, _placeholder_backend)
    runner.app = StationApp(runner, boards, clock=lambda: FIXED_TIME, cursor_blink=False)
    return runner.app


def _placeholder_backend() -> FlashBackend:
    return cast(FlashBackend, object())


async def settle(pilot: Pilot[int]) -> None:
    """Wait for every worker and for the messages they posted."""
    while True:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not pilot.app.workers:
            return


async def to_bench(pilot: Pilot[int]) -> None:
    await pilot.press(*"operator-1", "enter", *PIN, "enter")
    await settle(pilot)
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(pilot.app.screen, BenchScreen)


def test_bench_after_a_gang_run_with_the_order_exhausted(snap_compare) -> None:
    runner = ScriptedRunner({"/dev/ttyUSB0": "pass", "/dev/ttyUSB1": "pass",
                             "VSWD0000": "pass", "/dev/ttyUSB2": "quota_exhausted"}, quantity=3)

    async def run_before(pilot: Pilot[int]) -> None:
        await to_bench(pilot)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(make_app(runner), terminal_size=(80, 24), run_before=run_before)
    assert runner.produced == 3


def test_bench_while_programming_with_a_failed_board(snap_compare) -> None:
    runner = ScriptedRunner({"/dev/ttyUSB0": "pass", "/dev/ttyUSB1": "verify_mismatch",
                             "VSWD0000": "hold"}, quantity=5)

    async def run_before(pilot: Pilot[int]) -> None:
        await to_bench(pilot)
        await pilot.press("enter")
        assert await asyncio.to_thread(runner.held.wait, 30)
        await pilot.pause()  # the 50 % progress message was posted before ``held`` was set
        site_calls = [worker for worker in pilot.app.workers if worker.group == "site"]
        if site_calls:  # (an empty list would mean "all workers", the held board too)
            await pilot.app.workers.wait_for_complete(site_calls)
        await pilot.pause()

    try:
        assert snap_compare(make_app(runner), terminal_size=(80, 24), run_before=run_before)
    finally:
        runner.release.set()


def test_bench_while_the_last_unit_programs_is_not_yet_exhausted(snap_compare) -> None:
    runner = ScriptedRunner({"/dev/ttyUSB0": "pass", "VSWD0000": "hold"}, quantity=2)

    async def run_before(pilot: Pilot[int]) -> None:
        await to_bench(pilot)
        await pilot.press("enter")
        assert await asyncio.to_thread(runner.held.wait, 30)
        await pilot.pause()
        site_calls = [worker for worker in pilot.app.workers if worker.group == "site"]
        if site_calls:
            await pilot.app.workers.wait_for_complete(site_calls)
        await pilot.pause()

    try:
        assert snap_compare(make_app(runner), terminal_size=(80, 24), run_before=run_before)
    finally:
        runner.release.set()


def test_bench_with_a_report_pending_while_the_site_is_down(snap_compare) -> None:
    runner = ScriptedRunner({"/dev/ttyUSB0": "pass", "/dev/ttyUSB1": "report_pending"},
                            quantity=5)

    async def run_before(pilot: Pilot[int]) -> None:
        await to_bench(pilot)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(make_app(runner), terminal_size=(80, 24), run_before=run_before)


def test_sign_in_says_the_operator_is_locked(snap_compare) -> None:
    runner = ScriptedRunner({"/dev/ttyUSB0": "pass"}, quantity=1)

    async def run_before(pilot: Pilot[int]) -> None:
        await pilot.press(*"operator-9", "enter", *PIN, "enter")
        await settle(pilot)

    assert snap_compare(make_app(runner), terminal_size=(80, 24), run_before=run_before)
