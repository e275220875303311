"""The bench as a factory uses it: a board of the wrong kind, board swaps, Ctrl-C (issue 10)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from station_fixtures import STATION_PASSPHRASE, served_site, site_devices, site_grants, station
from test_station_ui_flow import open_bench, row_texts, settle
from textual.message import Message

from hw_profiles import load_profile
from provisioner.demo import DEMO_PRODUCT, DemoSite, virtual_boards
from provisioner.sim.firmware import render
from provisioner.site import catalogue
from provisioner.station.commands import INTERRUPTED_EXIT, PIN_ENV, STATION_PASSPHRASE_ENV
from provisioner.station.commands import station_group as station_cli
from provisioner.station.headless import run_headless
from provisioner.station.presence import Look, Presence, look
from provisioner.station.runner import StationRunner
from provisioner.station.ui.app import StationApp
from provisioner.station.ui.messages import BoardWaiting
from provisioner.station.ui.widgets.board_table import BoardTable

SIZE = (80, 24)
F411 = "stm32f411ce"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    root = tmp_path_factory.mktemp("station-bench")
    with served_site(root) as site:
        template = root / "owner" / "f411-bootloader.hex"
        template.write_text(render(load_profile(F411))["bootloader.hex"], encoding="ascii")
        catalogue.add_firmware(site.server.context, template,
                               kind=catalogue.FirmwareKind.bootloader_template,
                               product=DEMO_PRODUCT, version="4.1.1", profile=F411)
        yield site


@pytest.fixture(scope="module")
def runner(site: DemoSite) -> Iterator[StationRunner]:
    with station(site, site.site_dir.parent / "station", "station-bench") as runner:
        yield runner


def f411_order(site: DemoSite, quantity: int) -> str:
    return catalogue.create_order(site.server.context, product=DEMO_PRODUCT, profile=F411,
                                  quantity=quantity, bootloader="4.1.1")


def assert_nothing_counted(site: DemoSite, order_id: str) -> None:
    assert site_devices(site, order_id) == {}
    assert site_grants(site, order_id) == []
    assert catalogue.show_order(site.server.context, order_id).produced == 0


# --- the order's profile decides, in both front ends ----------------------------------------


def test_f103_boards_on_an_f411_order_are_refused_headless(site: DemoSite,
                                                           runner: StationRunner,
                                                           tmp_path: Path) -> None:
    order_id = f411_order(site, 2)
    with virtual_boards(1, swd_count=1, swd_dir=tmp_path / "swd") as boards:
        assert len(boards) == 2, "the virtual SWD probe plugin did not load"
        lines: list[str] = []
        summary = run_headless(runner, order_id, {b.location: b.connect for b in boards}, 2,
                               out=lines.append)
        assert summary.failed == 2, lines
        assert {r.code for r in summary.results} == {"chip_mismatch"}, lines
        assert all("expects PID 0x431, chip reports 0x410" in r.detail
                   for r in summary.results)
    assert_nothing_counted(site, order_id)


def test_the_station_command_has_no_profile_override() -> None:
    for args in (["--profile", "stm32f411ce"], ["recover", "--profile", "stm32f411ce",
                                                 "--operator", "x"]):
        result = CliRunner().invoke(station_cli, args)
        assert result.exit_code == 2
        assert "No such option '--profile'" in result.output


async def test_f103_boards_on_an_f411_order_are_refused_in_the_ui(
        site: DemoSite, runner: StationRunner, tmp_path: Path) -> None:
    order_id = f411_order(site, 2)
    with virtual_boards(1, swd_count=1, swd_dir=tmp_path / "swd") as boards:
        app = StationApp(runner, {b.location: b.connect for b in boards}, cursor_blink=False)
        async with app.run_test(size=SIZE) as pilot:
            bench = await open_bench(pilot, site, order_id)
            await pilot.press("enter")
            await settle(pilot)
            rows = row_texts(bench.query_one(BoardTable))
            assert [(row[3], row[5]) for row in rows] == [("chip_mismatch", "FAIL")] * 2
            await pilot.press("q")
            await settle(pilot)
    assert_nothing_counted(site, order_id)


# --- board swaps ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["serial", "swd"])
def test_count_three_on_one_board_swapped_twice_gives_three_boards(
        site: DemoSite, runner: StationRunner, tmp_path: Path, transport: str) -> None:
    order_id = site.add_order(3)
    serial, swd = (1, 0) if transport == "serial" else (0, 1)
    with virtual_boards(serial, swd_count=swd, swd_dir=tmp_path / "swd") as boards:
        (board,) = boards
        chips = [board.chip_uid.hex()]
        lines: list[str] = []

        def out(line: str) -> None:
            lines.append(line)
            if line.startswith("WAIT ") and line.endswith("done: insert next board"):
                chips.append(board.swap_chip().hex())  # the operator swaps the board

        summary = run_headless(runner, order_id, {board.location: board.connect}, 3, out=out)
    assert summary.passed == 3, lines
    assert [r.chip_uid for r in summary.results] == chips
    assert len(set(chips)) == 3
    waits = [line for line in lines if line.startswith("WAIT ")]
    assert waits == [f"WAIT {board.location}: chip {chip} done: insert next board"
                     for chip in chips[:2]]
    assert sorted(site_devices(site, order_id)) == sorted(chips)
    assert catalogue.show_order(site.server.context, order_id).produced == 3


def test_without_a_swap_it_waits_says_so_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    with served_site(tmp_path) as site:
        station_dir = tmp_path / "station"
        site.enrol_station(station_dir, "station-sigint", STATION_PASSPHRASE)
        order_id = site.add_order(3)
        env = {**os.environ, STATION_PASSPHRASE_ENV: STATION_PASSPHRASE, PIN_ENV: site.pin,
               "PYTHONUNBUFFERED": "1"}
        with virtual_boards(1) as (board,):
            command = [sys.executable, "-c", "from provisioner.cli import main; main()",
                       "station", "run", "--data-dir", str(station_dir), "--order", order_id,
                       "--count", "3", "--port", board.location, "--operator", site.operator_id]
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            assert process.stdout is not None
            seen: list[str] = []
            for line in process.stdout:
                seen.append(line.rstrip("\n"))
                if line.startswith("WAIT "):
                    break
            assert seen[-1] == (f"WAIT {board.location}: chip {board.chip_uid.hex()} done: "
                                "insert next board"), seen
            process.send_signal(signal.SIGINT)
            rest, err = process.communicate(timeout=60)
    lines = seen + rest.splitlines()
    assert process.returncode == INTERRUPTED_EXIT, (lines, err)
    assert "Traceback" not in err
    assert sum(line.startswith("PASS ") for line in lines) == 1
    assert "stopping: boards in flight finish, no new board is started" in lines
    assert lines[-1] == ("summary: 1 passed, 0 failed of 1 (recovered 0 open attempt(s)); "
                         "stopped by the operator after 1 of 3")


async def test_the_ui_waits_for_the_next_board_and_quits_while_waiting(
        site: DemoSite, runner: StationRunner) -> None:
    order_id = site.add_order(3)
    with virtual_boards(1) as (board,):
        app = StationApp(runner, {board.location: board.connect}, cursor_blink=False)
        waiting: list[str] = []
        swap = [True]

        def on_message(message: Message) -> None:
            if isinstance(message, BoardWaiting):
                waiting.append(message.event.message)
                if swap[0]:
                    board.swap_chip()

        async with app.run_test(size=SIZE) as pilot:
            app.message_signal.subscribe(app, on_message, immediate=True)
            bench = await open_bench(pilot, site, order_id)
            await pilot.press("enter")
            await settle(pilot)
            first = row_texts(bench.query_one(BoardTable))[0]
            assert first[5] == "PASS"
            await pilot.press("enter")  # the same board is still there: wait for a swap
            await settle(pilot)
            second = row_texts(bench.query_one(BoardTable))[0]
            assert second[5] == "PASS"
            assert second[1] != first[1]  # another chip
            assert waiting == [f"chip {board.chip_uid.hex()} done: insert next board"]

            swap[0] = False
            await pilot.press("enter")  # no swap this time: the row says what it waits for
            while len(waiting) < 2:
                await asyncio.sleep(0.05)
            await pilot.pause()
            row = row_texts(bench.query_one(BoardTable))[0]
            assert (row[3], row[5]) == ("insert next board", "…")
            await pilot.press("q")  # quitting stops the wait at once: no board is in flight
            await settle(pilot)
            assert not app.is_running
    assert app.return_code == 0
    assert catalogue.show_order(site.server.context, order_id).produced == 2


def test_looking_at_a_board_of_another_kind_releases_its_port() -> None:
    f411 = load_profile(F411)
    with virtual_boards(1) as (board,):
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(5):
            assert look(board.connect, f411) == Look(Presence.foreign)
        assert len(os.listdir("/proc/self/fd")) == before
        assert look(board.connect, load_profile("stm32f103c8")) == Look(
            Presence.chip, board.chip_uid.hex())
