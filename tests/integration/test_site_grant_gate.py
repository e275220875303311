"""A grant's station is decided in its transaction: the attacks on that shortcut.

``StationGate`` passes a grant or completion from a certificate it has already mapped to a
station without reading the station; the transaction checks the certificate and the status.
Over real TLS, on SQLite and PostgreSQL: a station suspended, revoked or given another
certificate after the gate learnt it is refused from its next request on (a repeated
request_id included) and nothing is reserved or completed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from site_fixtures import DATABASES, SiteSetup, build_site, client, grant_body, sign_in
from sqlalchemy import event, func, select, update

from provisioner.site import admin
from provisioner.site.db.models import AuditRow, Device, Station
from provisioner.site.server import SiteServer, run_in_thread


@pytest.fixture(params=sorted(DATABASES))
def served(request: pytest.FixtureRequest, tmp_path: Path
           ) -> Iterator[tuple[SiteSetup, SiteServer]]:
    with ExitStack() as stack:
        db_url = stack.enter_context(DATABASES[request.param]())
        setup = build_site(tmp_path, db_url=db_url, stations=2, quantity=10)
        server = run_in_thread(tmp_path)
        stack.callback(server.stop)
        yield setup, server


class _StationReads:
    """Counts the gate's certificate lookups on the server's engine."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "WHERE stations.cert_fingerprint" in statement:
            self.count += 1


def _grant(http: httpx.Client, auth: dict[str, str], chip: str, index: int,
           request_id: str | None = None) -> httpx.Response:
    return http.post("/v1/orders/o-test/grants", json=grant_body(chip, index, request_id),
                     headers=auth)


def _refusals(server: SiteServer, station_id: str) -> list[dict[str, Any]]:
    with server.context.factory() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.event == "grant_refused")
                               .order_by(AuditRow.seq))
        found = [json.loads(row.data) for row in rows]
    return [data for data in found if data["station_id"] == station_id]


def _give_another_certificate(server: SiteServer, station_id: str) -> None:
    """Make the station's row name another certificate (the station enrolled anew, say)."""
    with server.context.engine.begin() as conn:
        conn.execute(update(Station).where(Station.station_id == station_id)
                     .values(cert_fingerprint="00" * 32))


def _devices(server: SiteServer) -> int:
    with server.context.factory() as session:
        return int(session.scalar(select(func.count()).select_from(Device)) or 0)


def test_a_known_stations_grants_skip_the_gate_read_and_other_requests_keep_it(
    served: tuple[SiteSetup, SiteServer],
) -> None:
    setup, server = served
    reads = _StationReads()
    event.listen(server.context.engine, "before_cursor_execute", reads)
    try:
        with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
            auth = sign_in(http)
            assert reads.count == 1
            for index in range(3):
                assert _grant(http, auth, f"c0ffee{index:02x}", index).status_code == 200
            assert reads.count == 1, "a known station's grant read its station at the gate"
            assert http.get("/v1/orders", headers=auth).status_code == 200
            assert reads.count == 2, "a listing must read the station's status at the gate"
    finally:
        event.remove(server.context.engine, "before_cursor_execute", reads)
    assert _devices(server) == 3


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_a_station_stopped_after_the_gate_learnt_it_gets_no_grant(
    served: tuple[SiteSetup, SiteServer], status: str,
) -> None:
    setup, server = served
    with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
        auth = sign_in(http)
        first = _grant(http, auth, "c0ffee01", 0, request_id="req-first-grant-0001")
        assert first.status_code == 200
        admin.set_station_status(server.context, "ST-1", status)
        for answer in (_grant(http, auth, "c0ffee02", 1),
                       _grant(http, auth, "c0ffee01", 0, request_id="req-first-grant-0001")):
            assert answer.status_code == 403
            problem = answer.json()
            assert problem["code"] == "station_inactive"
            assert f"station ST-1 is {status}" == problem["detail"]
            assert "template" not in problem
    assert _devices(server) == 1
    # As at the gate: the status change was audited, the stopped station's tries are not.
    assert _refusals(server, "ST-1") == []
    assert admin.verify_audit(server.context) > 0


def test_a_certificate_that_is_no_longer_the_stations_gets_no_grant(
    served: tuple[SiteSetup, SiteServer],
) -> None:
    setup, server = served
    with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
        auth = sign_in(http)
        assert _grant(http, auth, "c0ffee01", 0).status_code == 200
        _give_another_certificate(server, "ST-1")
        answer = _grant(http, auth, "c0ffee02", 1)
        assert answer.status_code == 403
        assert answer.json()["code"] == "station_inactive"
        assert answer.json()["detail"] == "the client certificate is not station ST-1's"
    assert _devices(server) == 1


def test_another_stations_certificate_cannot_borrow_a_known_one(
    served: tuple[SiteSetup, SiteServer],
) -> None:
    setup, server = served
    with client(server.url, setup.ca_path, setup.stations["ST-1"]) as one, \
            client(server.url, setup.ca_path, setup.stations["ST-2"]) as two:
        auth_one, auth_two = sign_in(one), sign_in(two)
        assert _grant(one, auth_one, "c0ffee01", 0).status_code == 200
        admin.set_station_status(server.context, "ST-2", "suspended")
        # ST-2's certificate with ST-1's session: refused as ST-2, whatever the gate knows.
        answer = _grant(two, auth_one, "c0ffee02", 0)
        assert answer.status_code == 403
        assert answer.json()["detail"] == "station ST-2 is suspended"
        assert _grant(two, auth_two, "c0ffee03", 0).status_code == 403
        assert _grant(one, auth_one, "c0ffee04", 1).status_code == 200
    assert _devices(server) == 2


def _complete(http: httpx.Client, auth: dict[str, str], grant: dict[str, Any]
              ) -> httpx.Response:
    with_digest = {"request_id": f"done-{grant['grant_id']}", "result": "success",
                   "image_sha256": "00" * 32, "verified": True, "protected": True}
    return http.post(f"/v1/grants/{grant['grant_id']}/complete", json=with_digest,
                     headers=auth)


def test_a_known_stations_completion_skips_the_gate_read(
    served: tuple[SiteSetup, SiteServer],
) -> None:
    setup, server = served
    reads = _StationReads()
    with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
        auth = sign_in(http)
        grant = _grant(http, auth, "c0ffee01", 0).json()
        event.listen(server.context.engine, "before_cursor_execute", reads)
        try:
            answer = _complete(http, auth, grant)
        finally:
            event.remove(server.context.engine, "before_cursor_execute", reads)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "suspect"  # the digest sent is not the image's
    assert reads.count == 0


@pytest.mark.parametrize("change", ["suspended", "revoked", "certificate"])
def test_a_station_stopped_after_its_grant_cannot_complete_it(
    served: tuple[SiteSetup, SiteServer], change: str,
) -> None:
    setup, server = served
    with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
        auth = sign_in(http)
        grant = _grant(http, auth, "c0ffee01", 0).json()
        if change == "certificate":
            _give_another_certificate(server, "ST-1")
        else:
            admin.set_station_status(server.context, "ST-1", change)
        answer = _complete(http, auth, grant)
    assert answer.status_code == 403
    assert answer.json()["code"] == "station_inactive"
    with server.context.factory() as session:
        device = session.get(Device, grant["device_id"])
        assert device is not None
        assert device.status == "reserved", "a refused completion changed the device"
