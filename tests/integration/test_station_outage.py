"""The site goes away while boards are reported: "report pending", then settled by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from station_fixtures import assert_board_matches_site, served_site, site_devices, station
from test_station_ui_flow import banner_text, open_bench, row_texts, settle, take_site_down
from textual.message import Message

from hw_profiles import Profile
from provisioner.demo import DemoBoard, DemoSite, virtual_boards
from provisioner.flash.backend import FlashBackend
from provisioner.site import catalogue
from provisioner.site.server import run_in_thread
from provisioner.station.headless import run_headless
from provisioner.station.presence import Connector
from provisioner.station.runner import StationRunner
from provisioner.station.ui.app import StationApp
from provisioner.station.ui.messages import BoardDone
from provisioner.station.ui.widgets.board_table import BoardTable

SIZE = (80, 24)


class _KillAfterProtect:
    """A backend that takes the site down once the board is protected, before its report."""

    def __init__(self, backend: FlashBackend, kill: object) -> None:
        self._backend = backend
        self._kill = kill

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)

    def protect(self, level: int) -> None:
        self._backend.protect(level)
        self._kill()  # type: ignore[operator]


def killing(board: DemoBoard, site: DemoSite) -> Connector:
    def connect(profile: Profile) -> FlashBackend:
        return _KillAfterProtect(board.connect(profile), lambda: take_site_down(site))  # type: ignore[return-value]

    return connect


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[DemoSite, StationRunner]]:
    with served_site(tmp_path) as site, station(site, tmp_path / "station", "station-out") as r:
        original = site.server
        try:
            yield site, r
        finally:
            if site.server is not original:
                site.server.stop()
                site.server = original  # served_site stops the one it started


def bring_back(site: DemoSite) -> None:
    site.server = run_in_thread(site.site_dir, port=site.server.port)


def test_headless_says_report_pending_then_settles_by_itself(
        outage: tuple[DemoSite, StationRunner]) -> None:
    site, runner = outage
    order_id = site.add_order(3)
    with virtual_boards(2) as boards:
        first, second = boards
        lines: list[str] = []

        def out(line: str) -> None:
            lines.append(line)
            if line.startswith("waiting for the site to take"):
                bring_back(site)

        summary = run_headless(runner, order_id, {first.location: killing(first, site),
                                                  second.location: second.connect}, 2, out=out)
    pending = [line for line in lines if line.startswith("PENDING ")]
    assert len(pending) >= 1, lines
    assert all("programmed, report pending: keep the board" in line for line in pending)
    assert not any(line.startswith("FAIL ") and "state=reported" in line for line in lines)
    settled = [line for line in lines if line.startswith("SETTLED PASS ")]
    assert len(settled) == len(pending), lines
    assert summary.passed == 2, lines
    assert lines[-1].startswith("summary: 2 passed, 0 failed of 2")
    devices = site_devices(site, order_id)
    assert sorted(devices) == sorted(b.chip_uid.hex() for b in boards)
    for board in boards:
        assert devices[board.chip_uid.hex()].status == "programmed"
        assert_board_matches_site(board, devices[board.chip_uid.hex()])
    order = catalogue.show_order(site.server.context, order_id)
    assert (order.produced, order.reserved) == (2, 0)  # counted once each
    assert runner.journal.open_attempts() == []


async def test_ui_shows_report_pending_and_r_settles_it(
        outage: tuple[DemoSite, StationRunner]) -> None:
    site, runner = outage
    order_id = site.add_order(2)
    runner.reports.retry_s = 3600  # the operator's r settles it here, not the background
    with virtual_boards(1) as (board,):
        app = StationApp(runner, {board.location: killing(board, site)}, cursor_blink=False)
        done: list[BoardDone] = []

        def on_message(message: Message) -> None:
            if isinstance(message, BoardDone):
                done.append(message)

        async with app.run_test(size=SIZE) as pilot:
            app.message_signal.subscribe(app, on_message, immediate=True)
            bench = await open_bench(pilot, site, order_id)
            await pilot.press("enter")
            await settle(pilot)
            (row,) = row_texts(bench.query_one(BoardTable))
            assert (row[3], row[5]) == ("report pending", "SENT?")
            banner = banner_text(pilot)
            assert banner.startswith("SITE UNREACHABLE: 1 board is programmed, report pending")
            assert "cannot get grants" not in banner
            bring_back(site)
            await pilot.press("r")
            while len(done) < 2:
                await asyncio.sleep(0.05)
            await settle(pilot)
            (row,) = row_texts(bench.query_one(BoardTable))
            assert (row[3], row[5]) == ("reported", "PASS")
            assert "This session: 1 PASS · 0 FAIL" in str(
                bench.query_one("#tally").render())
            await pilot.press("q")
            await settle(pilot)
    assert app.return_code == 0
    device = site_devices(site, order_id)[board.chip_uid.hex()]
    assert device.status == "programmed"
    assert catalogue.show_order(site.server.context, order_id).produced == 1
