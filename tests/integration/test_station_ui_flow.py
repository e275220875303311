"""The Textual station UI driven by Pilot against the real runner, TLS site and virtual boards."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text
from station_fixtures import (
    assert_board_matches_site,
    is_blank,
    served_site,
    site_devices,
    station,
)
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerCancelled

from provisioner.demo import DemoBoard, DemoSite, virtual_boards
from provisioner.site import admin, catalogue
from provisioner.station.runner import StationRunner
from provisioner.station.ui.app import StationApp
from provisioner.station.ui.messages import QuitRequested
from provisioner.station.ui.screens.bench import BenchScreen
from provisioner.station.ui.screens.orders import OrdersScreen
from provisioner.station.ui.screens.signin import SignInScreen
from provisioner.station.ui.widgets.banner import Banner
from provisioner.station.ui.widgets.board_table import BoardTable
from provisioner.station.ui.widgets.order_table import OrderTable

SIZE = (80, 24)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    with served_site(tmp_path_factory.mktemp("station-ui")) as site:
        yield site


@pytest.fixture(scope="module")
def runner(site: DemoSite) -> Iterator[StationRunner]:
    with station(site, site.site_dir.parent / "station", "station-ui") as runner:
        yield runner


@pytest.fixture
def boards(tmp_path: Path) -> Iterator[list[DemoBoard]]:
    """Two AN3155 boards on ptys and one SWD board behind the virtual pyOCD probe."""
    with virtual_boards(2, swd_count=1, swd_dir=tmp_path / "swd") as boards:
        assert len(boards) == 3, "the virtual SWD probe plugin did not load"
        yield boards


async def settle(pilot: Pilot[int]) -> None:
    """Wait for every worker the app started and for the messages they posted."""
    app = pilot.app
    while True:
        # A worker still running when the app exits (q) is cancelled by Textual: that is done too.
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        if not app.workers:
            return


def take_site_down(site: DemoSite) -> None:
    """Stop the site server (in the background: it lingers on open keep-alive connections)."""
    threading.Thread(target=site.server.stop, daemon=True).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", site.server.port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError("the site kept accepting connections")


async def type_text(pilot: Pilot[int], text: str) -> None:
    await pilot.press(*text)


async def sign_in(pilot: Pilot[int], operator_id: str, pin: str) -> str:
    """Type the credentials on the sign-in screen; return what it then says."""
    screen = pilot.app.screen
    assert isinstance(screen, SignInScreen)
    operator_field = screen.query_one("#operator-id", Input)
    operator_field.value = ""  # an earlier attempt's text
    operator_field.focus()
    await type_text(pilot, operator_id)
    await pilot.press("enter")
    await type_text(pilot, pin)
    await pilot.press("enter")
    await settle(pilot)
    if isinstance(pilot.app.screen, SignInScreen):
        return str(pilot.app.screen.query_one("#signin-error", Static).render())
    return ""


def row_texts(table: BoardTable | OrderTable) -> list[list[str]]:
    """The plain text of every cell, row by row."""
    return [[cell.plain if isinstance(cell, Text) else str(cell)
             for cell in table.get_row_at(index)] for index in range(table.row_count)]


def banner_text(pilot: Pilot[int]) -> str:
    banner = pilot.app.screen.query_one(Banner)
    return banner.alert.text if banner.display and banner.alert is not None else ""


async def open_bench(pilot: Pilot[int], site: DemoSite, order_id: str) -> BenchScreen:
    """Sign in with the real PIN, pick ``order_id`` and return the bench."""
    assert await sign_in(pilot, site.operator_id, site.pin) == ""
    orders = pilot.app.screen
    assert isinstance(orders, OrdersScreen)
    table = orders.query_one(OrderTable)
    table.move_cursor(row=table.get_row_index(order_id))
    await pilot.press("enter")
    await pilot.pause()
    bench = pilot.app.screen
    assert isinstance(bench, BenchScreen)
    return bench


async def test_pilot_signs_in_picks_the_order_and_provisions_three_boards(
    site: DemoSite, runner: StationRunner, boards: list[DemoBoard]
) -> None:
    order_id = site.add_order(3)
    app = StationApp(runner, {b.location: b.connect for b in boards}, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        worker_reprs: list[str] = []

        def on_message(message: Message) -> None:
            if isinstance(message, Worker.StateChanged):
                worker_reprs.append(repr(message.worker))

        app.message_signal.subscribe(app, on_message, immediate=True)
        wrong_pin = "0000" if site.pin != "0000" else "1111"
        said = await sign_in(pilot, site.operator_id, wrong_pin)
        assert said == "Wrong operator ID or PIN. Try again."
        assert worker_reprs  # the sign-in ran in a worker, whose repr never shows the PIN
        assert all(wrong_pin not in text for text in worker_reprs)
        assert await sign_in(pilot, site.operator_id, site.pin) == ""
        orders = app.screen
        assert isinstance(orders, OrdersScreen)
        listed = {row[0]: row[3:] for row in row_texts(orders.query_one(OrderTable))}
        assert listed[order_id] == ["3", "0", "3", "open"]  # quantity, done, left, status

        table = orders.query_one(OrderTable)
        table.move_cursor(row=table.get_row_index(order_id))
        await pilot.press("enter")
        await pilot.pause()
        bench = app.screen
        assert isinstance(bench, BenchScreen)
        rows = row_texts(bench.query_one(BoardTable))
        assert [row[0] for row in rows] == [b.location for b in boards]
        assert {row[5] for row in rows} == {"-"}

        await pilot.press("enter")  # all three boards at once, one worker each
        await settle(pilot)
        rows = row_texts(bench.query_one(BoardTable))
        devices = site_devices(site, order_id)
        for board, row in zip(boards, rows, strict=True):
            device = devices[board.chip_uid.hex()]
            assert row[5] == "PASS", row
            assert row[3] == "reported"
            assert row[2] == str(device.device_id)
            assert board.chip_uid.hex().endswith(row[1].lstrip("…"))
            assert row[4].endswith("100%")
            assert_board_matches_site(board, device)
        status = str(bench.query_one("#order-status", Static).render())
        assert "produced 3 of 3 · remaining 0" in status
        assert "exhausted" in banner_text(pilot)  # the counts say no unit is left

        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert catalogue.show_order(site.server.context, order_id).produced == 3


async def test_quota_banner_retry_and_a_new_order(
    site: DemoSite, runner: StationRunner, boards: list[DemoBoard]
) -> None:
    order_id = site.add_order(2)
    app = StationApp(runner, {b.location: b.connect for b in boards}, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        bench = await open_bench(pilot, site, order_id)
        await pilot.press("enter")
        await settle(pilot)
        rows = row_texts(bench.query_one(BoardTable))
        assert sorted(row[5] for row in rows) == ["FAIL", "PASS", "PASS"]
        refused = next(row for row in rows if row[5] == "FAIL")
        assert refused[3] == "quota_exhausted"
        assert banner_text(pilot) == (f"ORDER {order_id} exhausted: no units left. "
                                      "Press o to pick another order.")
        refused_board = next(b for b in boards if b.location == refused[0])
        assert is_blank(refused_board)

        await pilot.press("r")  # retry the failed one: the site still refuses, nothing flashed
        await settle(pilot)
        assert row_texts(bench.query_one(BoardTable)) == rows
        assert is_blank(refused_board)

        # a fresh order: all three locations start again; two boards already carry IDs
        await pilot.press("o")
        await settle(pilot)
        assert isinstance(app.screen, OrdersScreen)
        next_order = site.add_order(5)
        await pilot.press("f5")
        await settle(pilot)
        table = app.screen.query_one(OrderTable)
        table.move_cursor(row=table.get_row_index(next_order))
        await pilot.press("enter")
        await pilot.pause()
        bench = app.screen
        assert isinstance(bench, BenchScreen)
        await pilot.press("enter")
        await settle(pilot)
        results = {row[0]: (row[3], row[5]) for row in row_texts(bench.query_one(BoardTable))}
        assert results == {b.location: (("reported", "PASS") if b is refused_board
                                        else ("already_provisioned", "FAIL")) for b in boards}
        await pilot.press("q")
    assert app.return_code == 1  # two locations ended on a failure
    assert list(site_devices(site, next_order)) == [refused_board.chip_uid.hex()]


async def test_quit_waits_for_the_boards_in_flight(
    site: DemoSite, runner: StationRunner, boards: list[DemoBoard]
) -> None:
    order_id = site.add_order(3)
    app = StationApp(runner, {b.location: b.connect for b in boards}, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_bench(pilot, site, order_id)
        banners_at_quit: list[str] = []

        def on_message(message: Message) -> None:
            if isinstance(message, QuitRequested):  # just handled by the app
                banners_at_quit.append(banner_text(pilot))

        app.message_signal.subscribe(app, on_message, immediate=True)
        # both keys queued at once: pilot.press would wait until the app is idle, i.e. done
        app.simulate_key("enter")
        app.simulate_key("q")
        await settle(pilot)
        assert banners_at_quit == ["Finishing 3 boards… the station quits when they are done."]
        assert not app.is_running  # it quit by itself once the last board finished
    assert app.return_code == 0
    assert catalogue.show_order(site.server.context, order_id).produced == 3


async def test_site_unreachable_and_lockout_in_operator_words(tmp_path: Path) -> None:
    with served_site(tmp_path) as site, \
            station(site, tmp_path / "station", "station-down") as runner, \
            virtual_boards(0, swd_count=1, swd_dir=tmp_path / "swd") as boards:
        admin.add_operator(site.server.context, "operator-2", "246810")
        order_id = site.add_order(2)
        factories = {b.location: b.connect for b in boards}
        app = StationApp(runner, factories, cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(4):
                assert await sign_in(pilot, "operator-2", "999999") == (
                    "Wrong operator ID or PIN. Try again.")
            assert await sign_in(pilot, "operator-2", "999999") == (
                "Locked for 15 minutes after too many wrong PINs. "
                "Wait, or ask a supervisor to reset your PIN.")
            assert await sign_in(pilot, "operator-2", "246810") == (
                "Locked for now after too many wrong PINs. "
                "Wait, or ask a supervisor to reset your PIN.")

            bench = await open_bench(pilot, site, order_id)
            take_site_down(site)
            await pilot.press("enter")
            await settle(pilot)
            (row,) = row_texts(bench.query_one(BoardTable))
            assert (row[3], row[5]) == ("site_unreachable", "FAIL")
            assert banner_text(pilot).startswith("SITE UNREACHABLE")
            assert is_blank(boards[0])
            await pilot.press("q")
        app = StationApp(runner, factories, cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            assert await sign_in(pilot, site.operator_id, site.pin) == (
                "Site unreachable: your PIN cannot be checked. Check the network, then retry.")


async def test_an_operator_signed_in_beforehand_starts_at_the_orders(
    site: DemoSite, runner: StationRunner
) -> None:
    order_id = site.add_order(1)
    app = StationApp(runner, {}, signed_in_as=site.operator_id, cursor_blink=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OrdersScreen)
        assert app.sub_title == f"operator {site.operator_id}"
        listed = {row[0]: row[3:] for row in row_texts(app.screen.query_one(OrderTable))}
        assert listed[order_id] == ["1", "0", "1", "open"]
        await pilot.press("enter")  # no board attached: the bench says so
        await pilot.pause()
        assert isinstance(app.screen, BenchScreen)
        await pilot.press("q")
    assert app.return_code == 0
