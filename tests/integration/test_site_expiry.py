"""Grant expiry enforced at the site: an expired reservation frees its unit (audited) when the
quota needs it, and its late completion is refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from site_fixtures import build_site, client, grant_body, sign_in

from provisioner.site import catalogue
from provisioner.site.context import open_site
from provisioner.site.db import repo
from provisioner.site.db.models import Device, Order
from provisioner.site.grants import GRANT_LIFETIME
from provisioner.site.server import SiteServer, run_in_thread


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


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[SiteServer, Clock, httpx.Client, dict[str, str]]]:
    root = tmp_path_factory.mktemp("site")
    setup = build_site(root)
    ctx = open_site(root)
    try:
        catalogue.create_order(ctx, product="widget", profile="stm32f103c8", quantity=1,
                               bootloader="1.0", order_id="o-one")
    finally:
        ctx.close()
    clock = Clock()
    server = run_in_thread(root, clock=clock)
    http = client(server.url, setup.ca_path, setup.stations["ST-1"])
    try:
        yield server, clock, http, sign_in(http)
    finally:
        http.close()
        server.stop()


def test_an_expired_reservation_frees_its_unit_and_its_completion_is_refused(
    served: tuple[SiteServer, Clock, httpx.Client, dict[str, str]],
) -> None:
    server, clock, http, auth = served
    first = http.post("/v1/orders/o-one/grants", json=grant_body("a0000001", 0), headers=auth)
    assert first.status_code == 200, first.text
    second = http.post("/v1/orders/o-one/grants", json=grant_body("a0000002", 1), headers=auth)
    assert second.json()["code"] == "quota_exhausted"
    clock.advance(GRANT_LIFETIME + timedelta(seconds=1))
    auth = sign_in(http)  # the operator session outlived by the clock jump
    third = http.post("/v1/orders/o-one/grants", json=grant_body("a0000003", 2), headers=auth)
    assert third.status_code == 200, third.text
    late = http.post(f"/v1/grants/{first.json()['grant_id']}/complete", headers=auth, json={
        "request_id": "late-complete-1", "result": "success", "image_sha256": "a" * 64})
    assert late.json()["code"] == "grant_expired"
    again = http.post(f"/v1/grants/{first.json()['grant_id']}/complete", headers=auth, json={
        "request_id": "late-complete-1", "result": "success", "image_sha256": "a" * 64})
    assert again.json()["code"] == "grant_expired"
    ctx = server.context
    with ctx.factory() as session:
        order = session.get(Order, "o-one")
        assert order is not None
        assert (order.produced, order.reserved) == (0, 1)
        device = session.get(Device, first.json()["device_id"])
        assert device is not None
        assert (device.status, device.attempts) == ("failed", 1)
        events = [(e.event, e.data.get("chip_uid"), e.actor) for e in repo.audit_entries(session)]
    released = [e for e in events if e[0] in ("reservation_released", "alarm_stale_reservation")]
    assert released == [("reservation_released", "a0000001", "site:reconcile"),
                        ("alarm_stale_reservation", "a0000001", "site:reconcile")]
    assert ("grant_refused", "a0000002", "station:ST-1") in events
    assert events[-1][0] == "grant_refused"  # the late completion, code grant_expired
    assert events[-2][0] == "grant_issued"  # its retry was refused without a second entry
