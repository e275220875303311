"""The station against the real TLS site and virtual boards: flow, gang, duplicates, quota."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import update
from station_fixtures import (
    assert_board_matches_site,
    is_blank,
    profile,
    served_site,
    site_devices,
    site_grants,
    station,
)

from provisioner.demo import DemoSite, virtual_boards
from provisioner.flash.backend import MemorySegment, opened
from provisioner.sim.faults import BoardFaults
from provisioner.site import catalogue
from provisioner.site.db.models import Station
from provisioner.station.engine import AttemptState
from provisioner.station.events import BoardFinished, BoardUpdate, StationEvent
from provisioner.station.headless import run_headless
from provisioner.station.runner import StationRunner


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    with served_site(tmp_path_factory.mktemp("station-flow")) as site:
        yield site


@pytest.fixture(scope="module")
def runner(site: DemoSite) -> Iterator[StationRunner]:
    with station(site, site.site_dir.parent / "station", "station-flow") as runner:
        yield runner


def test_boards_get_their_own_id_and_the_sites_key(site: DemoSite, runner: StationRunner,
                                                   tmp_path: Path) -> None:
    order_id = site.add_order(3)
    events: list[StationEvent] = []
    with virtual_boards(2, swd_count=1, swd_dir=tmp_path / "swd") as boards:
        results = [runner.provision_board(order_id, b.location, b.connect, events.append)
                   for b in boards]
        assert [r.passed for r in results] == [True] * len(boards), results
        devices = site_devices(site, order_id)
        for board, result in zip(boards, results, strict=True):
            device = devices[board.chip_uid.hex()]
            assert result.device_id == device.device_id
            assert device.status == "programmed"
            assert_board_matches_site(board, device)
    assert catalogue.show_order(site.server.context, order_id).produced == len(boards)
    states = [e.state for e in events if isinstance(e, BoardUpdate)
              and e.attempt_id == results[0].attempt_id]
    assert states[:6] == [AttemptState.detected, AttemptState.uid_read, AttemptState.granted,
                          AttemptState.key_derived, AttemptState.flashing, AttemptState.verified]
    assert states[-1] is AttemptState.reported


def test_gang_with_a_flash_fault_isolates_the_failure(site: DemoSite, runner: StationRunner
                                                      ) -> None:
    order_id = site.add_order(4)
    faults = {2: BoardFaults(nack_write_at=0x08000400)}
    with virtual_boards(4, faults=faults) as boards:
        lines: list[str] = []
        summary = run_headless(runner, order_id, {b.location: b.connect for b in boards}, 4,
                               out=lines.append)
        assert (summary.passed, summary.failed) == (3, 1), lines
        failed = next(r for r in summary.results if not r.passed)
        assert failed.location == boards[2].location
        assert failed.state is AttemptState.failed
        assert failed.code == "bootloader_nack"
        devices = site_devices(site, order_id)
        for board in (boards[0], boards[1], boards[3]):
            assert_board_matches_site(board, devices[board.chip_uid.hex()])
        assert devices[boards[2].chip_uid.hex()].status == "failed"
        indices = [index for _, index, _ in site_grants(site, order_id)]
        assert indices == sorted(set(indices))  # strictly increasing, none reused
        # retryable: the same board (the fault fired once) gets a new grant and a new index
        faulty = boards[2]
        retry = runner.provision_board(order_id, faulty.location, faulty.connect, _ignore)
        assert retry.passed, retry
        device = site_devices(site, order_id)[faulty.chip_uid.hex()]
        assert device.drbg_index > max(indices)
        assert_board_matches_site(faulty, device)


def test_the_same_board_again_is_refused(site: DemoSite, runner: StationRunner,
                                         tmp_path: Path) -> None:
    order_id = site.add_order(3)
    with virtual_boards(1) as (board,):
        assert runner.provision_board(order_id, board.location, board.connect, _ignore).passed
        again = runner.provision_board(order_id, board.location, board.connect, _ignore)
        assert (again.passed, again.state, again.code) == (False, AttemptState.refused,
                                                           "already_provisioned")
    # a blank board carrying the same silicon UID: this station's journal refuses it ...
    with virtual_boards(1, chip_uids=[board.chip_uid]) as (clone,):
        local = runner.provision_board(order_id, clone.location, clone.connect, _ignore)
        assert (local.code, is_blank(clone)) == ("duplicate_chip", True)
        # ... and another station asking the site is refused by the site
        with station(site, tmp_path / "station-2", "station-dup") as other:
            other_order = site.add_order(1)  # orders without a station list admit all stations
            remote = other.provision_board(other_order, clone.location, clone.connect,
                                           _ignore)
        assert (remote.code, remote.state, is_blank(clone)) == ("duplicate_chip",
                                                                AttemptState.refused, True)
    assert catalogue.show_order(site.server.context, order_id).produced == 1


def test_a_chip_carrying_a_device_id_is_refused_showing_it(site: DemoSite,
                                                           runner: StationRunner) -> None:
    order_id = site.add_order(1)
    zone = profile().patch_layout().id_zone
    with virtual_boards(1) as (board,):
        with opened(board.factory()) as backend:  # provisioned elsewhere, not protected
            backend.program([MemorySegment(zone.address, (4242).to_bytes(4, "little"))])
        result = runner.provision_board(order_id, board.location, board.connect, _ignore)
    assert (result.code, result.passed) == ("already_provisioned", False)
    assert "4242" in result.detail
    assert site_grants(site, order_id) == []


def test_quota_of_three_refuses_the_fourth_board(site: DemoSite, runner: StationRunner) -> None:
    order_id = site.add_order(3)
    with virtual_boards(4) as boards:
        results = [runner.provision_board(order_id, b.location, b.connect, _ignore)
                   for b in boards]
        assert [r.passed for r in results] == [True, True, True, False]
        assert (results[3].code, results[3].state) == ("quota_exhausted", AttemptState.refused)
        assert is_blank(boards[3])
    order = catalogue.show_order(site.server.context, order_id)
    assert (order.produced, order.remaining) == (3, 0)


def _ignore(event: StationEvent) -> None:
    assert not isinstance(event, BoardFinished) or event.attempt_id


def test_index_reused_jumps_forward_never_back(site: DemoSite, runner: StationRunner) -> None:
    order_id = site.add_order(1)
    with site.server.context.factory() as session, session.begin():
        session.execute(update(Station).where(Station.station_id == runner.station_id)
                        .values(next_index=Station.next_index + 5))
    before = runner.keystore.next_index
    with virtual_boards(1) as (board,):
        result = runner.provision_board(order_id, board.location, board.connect, _ignore)
        assert result.passed, result
        device = site_devices(site, order_id)[board.chip_uid.hex()]
        assert device.drbg_index == before + 5
        assert_board_matches_site(board, device)
    assert runner.keystore.next_index == before + 6


def test_a_changed_local_profile_is_refused_before_any_grant(site: DemoSite,
                                                             runner: StationRunner) -> None:
    order_id = site.add_order(1)
    tampered = StationRunner(
        station_id=runner.station_id, client=runner.client, journal=runner.journal,
        keystore=runner.keystore, transport_key=runner._transport_key,
        profiles=lambda name: replace(profile(), sha256="0" * 64),
    )
    with virtual_boards(1) as (board,):
        result = tampered.provision_board(order_id, board.location, board.connect, _ignore)
        assert (result.passed, result.code) == (False, "invalid_request")
        assert "differs" in result.detail
        assert is_blank(board)
    assert site_grants(site, order_id) == []
