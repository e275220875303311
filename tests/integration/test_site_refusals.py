"""Every refusal of the station API over TLS, each leaving nothing allocated or counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from site_fixtures import (
    OPERATOR,
    PIN,
    REPO,
    SiteSetup,
    build_site,
    client,
    enrol,
    grant_body,
    sign_in,
)
from sqlalchemy import func, select

from provisioner.errors import FirmwareProfileMismatch, InvalidRequest, OrderClosed
from provisioner.site import admin, catalogue
from provisioner.site.context import open_site
from provisioner.site.db import repo
from provisioner.site.db.models import Device, Grant, Order, Station
from provisioner.site.server import SiteServer, run_in_thread
from provisioner.wire import PROBLEM_CONTENT_TYPE


class Clock:
    """A settable site clock."""

    def __init__(self) -> None:
        self._now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


@dataclass
class Bench:
    setup: SiteSetup
    server: SiteServer
    clock: Clock
    http: httpx.Client
    auth: dict[str, str]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    root = tmp_path_factory.mktemp("site")
    setup = build_site(root, stations=2, quantity=50)
    ctx = open_site(root)
    try:
        admin.add_operator(ctx, "bob", "1234-5678")
        admin.add_operator(ctx, "carol", "5821-9037")
        catalogue.create_order(ctx, product="widget", profile="stm32f103c8", quantity=1,
                               bootloader="1.0", order_id="o-one")
        catalogue.create_order(ctx, product="widget", profile="stm32f103c8", quantity=5,
                               bootloader="1.0", stations=("ST-2",), order_id="o-st2")
        catalogue.create_order(ctx, product="widget", profile="stm32f103c8", quantity=5,
                               bootloader="1.0", order_id="o-closed")
        catalogue.close_order(ctx, "o-closed")
    finally:
        ctx.close()
    clock = Clock()
    server = run_in_thread(root, clock=clock)
    http = client(server.url, setup.ca_path, setup.stations["ST-1"])
    yield Bench(setup, server, clock, http, sign_in(http))
    http.close()
    server.stop()


def _counts(bench: Bench) -> tuple[int, ...]:
    ctx = bench.server.context
    with ctx.factory() as session:
        devices = session.scalar(select(func.count()).select_from(Device))
        grants = session.scalar(select(func.count()).select_from(Grant))
        orders = session.execute(select(Order.produced, Order.reserved)).all()
        indices = session.scalars(select(Station.next_index).order_by(Station.station_id)).all()
    return (devices or 0, grants or 0, *(n for row in orders for n in row), *indices)


def _last_event(bench: Bench) -> tuple[str, dict[str, object]]:
    with bench.server.context.factory() as session:
        entry = repo.audit_entries(session)[-1]
    return entry.event, dict(entry.data)


def _next_index(bench: Bench) -> int:
    with bench.server.context.factory() as session:
        station = session.get(Station, "ST-1")
        assert station is not None
        return station.next_index


def _grant(bench: Bench, order_id: str, chip_uid: str, index: int | None = None,
           request_id: str | None = None) -> httpx.Response:
    body = grant_body(chip_uid, _next_index(bench) if index is None else index, request_id)
    return bench.http.post(f"/v1/orders/{order_id}/grants", json=body, headers=bench.auth)


def _refused(
    bench: Bench, answer: httpx.Response, code: str, before: tuple[int, ...]
) -> dict[str, Any]:
    assert answer.headers["content-type"].startswith(PROBLEM_CONTENT_TYPE), answer.text
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code, problem
    assert problem["status"] == answer.status_code
    assert problem["detail"]
    assert _counts(bench) == before, "a refusal allocated or counted something"
    return problem


def _complete(bench: Bench, grant_id: str, result: str, request_id: str,
              digest: str | None = None) -> httpx.Response:
    return bench.http.post(f"/v1/grants/{grant_id}/complete", headers=bench.auth, json={
        "request_id": request_id, "result": result, "image_sha256": digest})


def test_quota_exhausted(bench: Bench) -> None:
    assert _grant(bench, "o-one", "a0000001").status_code == 200
    before = _counts(bench)
    problem = _refused(bench, _grant(bench, "o-one", "a0000002"), "quota_exhausted", before)
    assert problem["request_id"].startswith("req-")
    assert _last_event(bench)[0] == "grant_refused"


def test_duplicate_chip_raises_an_alarm(bench: Bench) -> None:
    assert _grant(bench, "o-test", "b0000001").status_code == 200
    before = _counts(bench)
    _refused(bench, _grant(bench, "o-test", "b0000001"), "duplicate_chip", before)
    event, data = _last_event(bench)
    assert event == "alarm_duplicate_chip"
    assert data["chip_uid"] == "b0000001"


def test_index_reused_names_the_expected_index(bench: Bench) -> None:
    ok = _grant(bench, "o-test", "c0000001", index=500)
    assert ok.status_code == 200
    before = _counts(bench)
    problem = _refused(bench, _grant(bench, "o-test", "c0000002", index=499),
                       "index_reused", before)
    assert problem["expected_index"] == 501


def test_order_closed(bench: Bench) -> None:
    before = _counts(bench)
    _refused(bench, _grant(bench, "o-closed", "d0000001"), "order_closed", before)


def test_station_not_allowed(bench: Bench) -> None:
    before = _counts(bench)
    answer = _grant(bench, "o-st2", "e0000001")
    assert answer.status_code == 403
    _refused(bench, answer, "station_not_allowed", before)


def test_order_not_found(bench: Bench) -> None:
    before = _counts(bench)
    answer = _grant(bench, "o-nope", "e0000002")
    assert answer.status_code == 404
    _refused(bench, answer, "order_not_found", before)


def test_failures_are_retried_then_quarantined(bench: Bench) -> None:
    for attempt in range(1, 4):
        answer = _grant(bench, "o-test", "f0000001")
        assert answer.status_code == 200, answer.text
        grant = answer.json()
        done = _complete(bench, grant["grant_id"], "failure", f"fail-{attempt:04d}")
        assert done.json()["attempts"] == attempt
    assert done.json()["status"] == "quarantined"
    before = _counts(bench)
    _refused(bench, _grant(bench, "o-test", "f0000001"), "chip_quarantined", before)


def test_digest_mismatch_marks_suspect_with_alarm(bench: Bench) -> None:
    grant = _grant(bench, "o-test", "f1000001").json()
    done = _complete(bench, grant["grant_id"], "success", "mismatch-01", "00" * 32)
    assert done.json()["status"] == "suspect"
    assert _last_event(bench)[0] == "alarm_digest_mismatch"
    before = _counts(bench)
    answer = _complete(bench, grant["grant_id"], "failure", "mismatch-02")
    _refused(bench, answer, "grant_already_completed", before)


def test_grant_not_found(bench: Bench) -> None:
    before = _counts(bench)
    answer = _complete(bench, "g-missing", "success", "missing-01", "00" * 32)
    assert answer.status_code == 404
    _refused(bench, answer, "grant_not_found", before)


def test_same_request_id_returns_the_same_grant(bench: Bench) -> None:
    first = _grant(bench, "o-test", "f2000001", index=600, request_id="same-request-1")
    before = _counts(bench)
    second = _grant(bench, "o-test", "f2000001", index=600, request_id="same-request-1")
    assert second.status_code == 200
    assert {k: v for k, v in second.json().items() if k not in ("template", "application")} == {
        k: v for k, v in first.json().items() if k not in ("template", "application")}
    assert _counts(bench) == before
    other = _grant(bench, "o-test", "f2000002", index=601, request_id="same-request-1")
    _refused(bench, other, "invalid_request", before)


def test_malformed_body_is_invalid_request(bench: Bench) -> None:
    before = _counts(bench)
    answer = bench.http.post("/v1/orders/o-test/grants", headers=bench.auth,
                             json={"request_id": "x" * 10, "chip_uid": "NOT-HEX", "drbg_index": 1})
    assert answer.status_code == 422
    assert "chip_uid" in _refused(bench, answer, "invalid_request", before)["detail"]


def test_missing_or_foreign_token_is_refused(bench: Bench) -> None:
    before = _counts(bench)
    answer = bench.http.post("/v1/orders/o-test/grants", json=grant_body("f3000001", 700))
    assert answer.status_code == 401
    _refused(bench, answer, "authentication_failed", before)
    with client(bench.server.url, bench.setup.ca_path, bench.setup.stations["ST-2"]) as other:
        # alice's token was issued to ST-1: it is worthless on ST-2's connection.
        answer = other.post("/v1/orders/o-test/grants", json=grant_body("f3000001", 700),
                            headers=bench.auth)
        _refused(bench, answer, "authentication_failed", before)


def test_pin_lockout_after_five_failures_for_fifteen_minutes(bench: Bench) -> None:
    for _ in range(4):
        answer = bench.http.post("/v1/session", json={"operator_id": "bob", "pin": "0000-0000"})
        assert answer.json()["code"] == "authentication_failed"
    answer = bench.http.post("/v1/session", json={"operator_id": "bob", "pin": "0000-0000"})
    assert answer.status_code == 423
    assert answer.json()["code"] == "operator_locked"
    assert _last_event(bench)[0] == "operator_locked"
    right = {"operator_id": "bob", "pin": "1234-5678"}
    assert bench.http.post("/v1/session", json=right).json()["code"] == "operator_locked"
    bench.clock.advance(timedelta(minutes=14))
    assert bench.http.post("/v1/session", json=right).json()["code"] == "operator_locked"
    bench.clock.advance(timedelta(minutes=2))
    assert bench.http.post("/v1/session", json=right).status_code == 200
    assert bench.http.post("/v1/session", json={"operator_id": OPERATOR, "pin": PIN}
                           ).status_code == 200


def test_lockout_doubles_and_a_lapsed_lockout_does_not_reset_the_count(bench: Bench) -> None:
    """The attack: 5 guesses, wait 15 minutes, 5 more, ... (~480 guesses a day before)."""
    wrong = {"operator_id": "carol", "pin": "0000-0001"}
    right = {"operator_id": "carol", "pin": "5821-9037"}
    for _ in range(5):
        bench.http.post("/v1/session", json=wrong)
    assert _last_event(bench) == ("operator_locked", {
        "operator_id": "carol", "station_id": "ST-1", "failures": 5, "lockout_s": 900,
        "code": "operator_locked"})
    for minutes in (30, 60, 120):  # each lapsed lockout: one more guess locks twice as long
        bench.clock.advance(timedelta(minutes=minutes // 2 + 1))
        answer = bench.http.post("/v1/session", json=wrong)
        assert answer.status_code == 423
        assert f"locked out for {minutes} minutes" in answer.json()["detail"]
        assert bench.http.post("/v1/session", json=right).json()["code"] == "operator_locked"
    bench.clock.advance(timedelta(minutes=121))
    assert bench.http.post("/v1/session", json=right).status_code == 200
    bench.http.post("/v1/session", json=wrong)  # a success cleared the count
    assert _last_event(bench)[1]["failures"] == 1


def test_a_profile_changed_since_the_order_is_not_used(bench: Bench) -> None:
    ctx = bench.server.context
    catalogue.create_order(ctx, product="widget", profile="stm32f103c8", quantity=5,
                           bootloader="1.0", order_id="o-profile")
    with ctx.factory() as session, session.begin():
        order = session.get(Order, "o-profile")
        assert order is not None
        order.profile_sha256 = "0" * 64
    before = _counts(bench)
    answer = _grant(bench, "o-profile", "f4000001")
    assert answer.status_code == 500
    assert "changed since order o-profile" in answer.json()["detail"]
    assert _counts(bench) == before


def test_an_order_refuses_firmware_of_another_profile(bench: Bench) -> None:
    ctx = bench.server.context
    # widget 1.0's template is registered for the STM32F103; an F411 order must not get it.
    with pytest.raises(FirmwareProfileMismatch, match="registered for profile stm32f103c8"):
        catalogue.create_order(ctx, product="widget", profile="stm32f411ce", quantity=5,
                               bootloader="1.0", order_id="o-wrong-profile")
    fixtures = REPO / "fixtures"
    catalogue.add_firmware(ctx, fixtures / "stm32f411ce" / "bootloader.hex",
                           kind=catalogue.FirmwareKind.bootloader_template, product="widget",
                           version="4.0", profile="stm32f411ce")
    catalogue.add_firmware(ctx, fixtures / "stm32f103c8" / "application.hex",
                           kind=catalogue.FirmwareKind.application, product="widget",
                           version="4.0-f1", profile="stm32f103c8")
    with pytest.raises(FirmwareProfileMismatch, match=r"application widget 4\.0-f1"):
        catalogue.create_order(ctx, product="widget", profile="stm32f411ce", quantity=5,
                               bootloader="4.0", application="4.0-f1")
    with ctx.factory() as session:
        assert session.get(Order, "o-wrong-profile") is None


def test_a_grant_whose_template_is_of_another_profile_is_refused_with_an_alarm(
    bench: Bench,
) -> None:
    # Defence in depth: an order changed in the database (or created before the check) to
    # carry the F103 template under the F411 profile gets no grant.
    ctx = bench.server.context
    catalogue.add_firmware(ctx, REPO / "fixtures" / "stm32f411ce" / "bootloader.hex",
                           kind=catalogue.FirmwareKind.bootloader_template, product="widget",
                           version="4.1", profile="stm32f411ce")
    catalogue.create_order(ctx, product="widget", profile="stm32f411ce", quantity=5,
                           bootloader="4.1", order_id="o-f411")
    with ctx.factory() as session, session.begin():
        order = session.get(Order, "o-f411")
        f103 = session.get(Order, bench.setup.order_id)
        assert order is not None
        assert f103 is not None
        order.bootloader_id = f103.bootloader_id
    before = _counts(bench)
    problem = _refused(bench, _grant(bench, "o-f411", "f4110001"), "firmware_profile_mismatch",
                       before)
    assert "registered for profile stm32f103c8, not stm32f411ce" in problem["detail"]
    event, data = _last_event(bench)
    assert event == "alarm_firmware_profile_mismatch"
    assert data["order_id"] == "o-f411"


def test_a_station_added_to_an_order_later_serves_it(bench: Bench, tmp_path: Path) -> None:
    ctx = bench.server.context
    catalogue.create_order(ctx, product="widget", profile="stm32f103c8", quantity=5,
                           bootloader="1.0", stations=("ST-1",), order_id="o-late")
    late = enrol(ctx, bench.setup.root, "ST-late", tmp_path)
    with client(bench.server.url, bench.setup.ca_path, late) as http:
        auth = sign_in(http)
        body = grant_body("1a7e0001", 0)
        refused = http.post("/v1/orders/o-late/grants", json=body, headers=auth)
        assert refused.json()["code"] == "station_not_allowed"
        catalogue.add_station_to_order(ctx, "o-late", "ST-late")
        assert _last_event(bench) == ("order_station_added",
                                      {"order_id": "o-late", "station_id": "ST-late"})
        granted = http.post("/v1/orders/o-late/grants", json=body, headers=auth)
        assert granted.status_code == 200, granted.text
    with pytest.raises(InvalidRequest, match="may already serve"):
        catalogue.add_station_to_order(ctx, "o-late", "ST-late")
    with pytest.raises(OrderClosed):
        catalogue.add_station_to_order(ctx, "o-closed", "ST-late")
