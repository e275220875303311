"""A scripted production over the real station flow, with the ground truth it must report.

Three stations, two operators, two orders, on the TLS site with virtual AN3155 boards: good
boards, a failed board (NACKed write), a digest mismatch (the station reports another
image), a cloned chip at another station, refusals (quota, station not allowed, a late
completion), and two expired reservations (one released by `site reconcile`, one refused when
its completion arrives late).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from station_fixtures import STATION_PASSPHRASE, served_site

from provisioner import wire
from provisioner.demo import DemoBoard, DemoSite, virtual_boards
from provisioner.errors import GrantExpired, StationNotAllowed
from provisioner.sim.faults import BoardFaults
from provisioner.site import admin
from provisioner.site.admin_cli import site_group
from provisioner.site.context import utc_now
from provisioner.site.db.models import Grant
from provisioner.station.events import StationEvent
from provisioner.station.runner import StationRunner
from provisioner.station.unlock import open_station

OPERATOR_2 = "operator-2"
PIN_2 = "8642-1357"
STATIONS = ("ST-A", "ST-B", "ST-C")


@dataclass
class Truth:
    """What happened, counted by the test itself as it drove the stations."""

    granted: dict[str, int] = field(default_factory=dict)
    outcome: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)
    alarms: dict[str, int] = field(default_factory=dict)
    produced: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)

    def grant(self, order: str, station: str, operator: str) -> None:
        key = f"{order}|{station}|{operator}"
        self.granted[key] = self.granted.get(key, 0) + 1

    def close(self, order: str, station: str, operator: str, outcome: str) -> None:
        key = (order, station, operator, outcome)
        self.outcome[key] = self.outcome.get(key, 0) + 1

    def refuse(self, code: str) -> None:
        self.refusals[code] = self.refusals.get(code, 0) + 1

    def alarm(self, event: str) -> None:
        self.alarms[event] = self.alarms.get(event, 0) + 1

    def count(self, outcome: str, *, order: str | None = None, station: str | None = None,
              operator: str | None = None) -> int:
        """Sum an outcome ("granted" too) over the given order/station/operator."""
        if outcome == "granted":
            items = [(tuple(k.split("|")), v) for k, v in self.granted.items()]
        else:
            items = [(k[:3], v) for k, v in self.outcome.items() if k[3] == outcome]
        return sum(v for (o, s, p), v in items
                   if order in (None, o) and station in (None, s) and operator in (None, p))


@dataclass
class Production:
    """The site after the run, the orders, and the ground truth."""

    site: DemoSite
    orders: dict[str, int]
    truth: Truth
    reconcile_before: str
    reconcile_release: str
    reconcile_after: str
    work: Path

    def site_cli(self, *args: str) -> str:
        result = CliRunner().invoke(site_group, ["--site-dir", str(self.site.site_dir), *args])
        assert result.exit_code == 0, result.output
        return result.output


def _ignore(event: StationEvent) -> None:
    del event


@contextmanager
def _station(site: DemoSite, work: Path, station_id: str, operator: str, pin: str
             ) -> Iterator[StationRunner]:
    station_dir = work / station_id
    site.enrol_station(station_dir, station_id, STATION_PASSPHRASE)
    runner = open_station(station_dir, STATION_PASSPHRASE)
    try:
        runner.sign_in(operator, pin)
        yield runner
    finally:
        runner.close()


def _expire(site: DemoSite, grant_id: str) -> None:
    """Let the grant's lifetime pass (the site clock is the real one: move the deadline)."""
    with site.server.context.factory() as session, session.begin():
        session.execute(update(Grant).where(Grant.grant_id == grant_id)
                        .values(expires_at=utc_now() - timedelta(minutes=1)))


def _raw_grant(runner: StationRunner, order_id: str) -> wire.GrantResponse:
    """A grant the station never completes (it crashed and its journal was lost)."""
    request = wire.GrantRequest(request_id=f"req-{secrets.token_hex(8)}",
                                chip_uid=secrets.token_hex(12),
                                drbg_index=runner.keystore.next_index + 100)
    return runner.client.request_grant(order_id, request)


def _provision(runner: StationRunner, order_id: str, board: DemoBoard
               ) -> tuple[bool, str, int]:
    result = runner.provision_board(order_id, board.location, board.connect, _ignore)
    return result.passed, result.code or "", result.device_id or 0


@contextmanager
def production(work: Path) -> Iterator[Production]:
    """Run the scripted production; yield the served site and the ground truth."""
    truth = Truth()
    with served_site(work) as site, ExitStack() as stack:
        admin.add_operator(site.server.context, OPERATOR_2, PIN_2)
        op1 = site.operator_id
        a_runner = stack.enter_context(_station(site, work, "ST-A", op1, site.pin))
        b_runner = stack.enter_context(_station(site, work, "ST-B", OPERATOR_2, PIN_2))
        c_runner = stack.enter_context(_station(site, work, "ST-C", op1, site.pin))
        order_a = site.add_order(20)
        order_b = site.add_order(1, stations=("ST-A",))
        # --- ST-A (operator-1): three good boards on A, one on B, then B's quota is out
        with virtual_boards(5) as boards:
            for board in boards[:3]:
                passed, _, device_id = _provision(a_runner, order_a, board)
                assert passed
                truth.grant(order_a, "ST-A", op1)
                truth.close(order_a, "ST-A", op1, "programmed")
                truth.produced[device_id] = (order_a, "ST-A", op1, "programmed")
            passed, _, device_id = _provision(a_runner, order_b, boards[3])
            assert passed
            truth.grant(order_b, "ST-A", op1)
            truth.close(order_b, "ST-A", op1, "programmed")
            truth.produced[device_id] = (order_b, "ST-A", op1, "programmed")
            assert _provision(a_runner, order_b, boards[4])[:2] == (False, "quota_exhausted")
            truth.refuse("quota_exhausted")
            cloned_uid = boards[0].chip_uid
        # --- ST-B (operator-2): two good, one failed board, a clone of an ST-A chip
        with virtual_boards(3, faults={2: BoardFaults(nack_write_at=0x08000400)}) as boards:
            for board in boards[:2]:
                passed, _, device_id = _provision(b_runner, order_a, board)
                assert passed
                truth.grant(order_a, "ST-B", OPERATOR_2)
                truth.close(order_a, "ST-B", OPERATOR_2, "programmed")
                truth.produced[device_id] = (order_a, "ST-B", OPERATOR_2, "programmed")
            assert _provision(b_runner, order_a, boards[2])[:2] == (False, "bootloader_nack")
            truth.grant(order_a, "ST-B", OPERATOR_2)
            truth.close(order_a, "ST-B", OPERATOR_2, "failed")
        with virtual_boards(1, chip_uids=[cloned_uid]) as (clone,):
            assert _provision(b_runner, order_a, clone)[:2] == (False, "duplicate_chip")
            truth.refuse("duplicate_chip")
            truth.alarm("alarm_duplicate_chip")
        # --- ST-C (operator-1): one good board, one whose reported digest differs
        with virtual_boards(2) as boards:
            passed, _, device_id = _provision(c_runner, order_a, boards[0])
            assert passed
            truth.grant(order_a, "ST-C", op1)
            truth.close(order_a, "ST-C", op1, "programmed")
            truth.produced[device_id] = (order_a, "ST-C", op1, "programmed")
            honest = c_runner.client.complete

            def other_image(grant_id: str, request: wire.CompleteRequest
                            ) -> wire.CompleteResponse:
                return honest(grant_id, request.model_copy(update={"image_sha256": "e" * 64}))

            c_runner.client.complete = other_image  # type: ignore[method-assign]
            try:
                passed, _, device_id = _provision(c_runner, order_a, boards[1])
            finally:
                c_runner.client.complete = honest  # type: ignore[method-assign]
            truth.grant(order_a, "ST-C", op1)
            truth.close(order_a, "ST-C", op1, "suspect")
            truth.produced[device_id] = (order_a, "ST-C", op1, "suspect")
            truth.alarm("alarm_digest_mismatch")
        # --- refusals straight from the stations' site clients
        with pytest.raises(StationNotAllowed):
            _raw_grant(c_runner, order_b)
        truth.refuse("station_not_allowed")
        # --- two reservations that expire: ST-C's is released by reconcile, ST-B's completes late
        stale = _raw_grant(c_runner, order_a)
        truth.grant(order_a, "ST-C", op1)
        late = _raw_grant(b_runner, order_a)
        truth.grant(order_a, "ST-B", OPERATOR_2)
        _expire(site, stale.grant_id)
        _expire(site, late.grant_id)
        with pytest.raises(GrantExpired):
            b_runner.client.complete(late.grant_id, wire.CompleteRequest(
                request_id=f"late-{secrets.token_hex(4)}", result=wire.AttemptResult.success,
                image_sha256="a" * 64, verified=True))
        truth.refuse("grant_expired")
        truth.close(order_a, "ST-B", OPERATOR_2, "released")
        truth.alarm("alarm_stale_reservation")
        result = Production(site, {order_a: 20, order_b: 1}, truth, "", "", "", work)
        result.reconcile_before = result.site_cli("reconcile")
        result.reconcile_release = result.site_cli("reconcile", "--release-expired")
        truth.close(order_a, "ST-C", op1, "released")
        truth.alarm("alarm_stale_reservation")
        result.reconcile_after = result.site_cli("reconcile", "--order", order_a)
        yield result
