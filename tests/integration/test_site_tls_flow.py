"""The real site over real TLS on 127.0.0.1: enrolment → client cert → grant → complete."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from site_fixtures import (
    PROFILE,
    REPO,
    SiteSetup,
    build_site,
    client,
    enrol,
    grant_body,
    sign_in,
    tls_context,
)

from hex_generator import parse_ihex, patch
from hw_profiles import load_profile
from provisioner.crypto.grant_firmware import open_sealed
from provisioner.crypto.keystream import KeyStream
from provisioner.errors import DecryptError
from provisioner.site import admin
from provisioner.site.context import device_key_aad, open_site
from provisioner.site.db.models import Device
from provisioner.site.gate import GatedStation, StationGate, station_for_certificate
from provisioner.site.server import SiteServer, run_in_thread
from provisioner.site.sitedir import SiteDir
from provisioner.wire import PROBLEM_CONTENT_TYPE, GrantResponse, template_aad


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SiteSetup, SiteServer]]:
    root = tmp_path_factory.mktemp("site")
    setup = build_site(root, stations=3, quantity=5, application=True)
    server = run_in_thread(root)
    yield setup, server
    server.stop()


def test_health_needs_no_client_certificate_and_openapi_is_off_by_default(
    served: tuple[SiteSetup, SiteServer],
) -> None:
    setup, server = served
    with client(server.url, setup.ca_path, None) as http:
        health = http.get("/v1/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        for path in ("/v1/openapi.json", "/v1/docs", "/v1/no-such-path"):
            assert http.get(path).json()["code"] == "station_inactive"
    with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
        assert http.get("/v1/openapi.json").status_code == 404
        assert http.get("/v1/docs").status_code == 404


def test_grant_and_complete_over_mutual_tls(served: tuple[SiteSetup, SiteServer]) -> None:
    setup, server = served
    station = setup.stations["ST-1"]
    with client(server.url, setup.ca_path, station) as http:
        auth = sign_in(http)
        orders = http.get("/v1/orders", headers=auth).json()["orders"]
        assert [o["order_id"] for o in orders] == [setup.order_id]
        answer = http.post(f"/v1/orders/{setup.order_id}/grants",
                           json=grant_body("0a1b2c3d4e5f6071", 0), headers=auth)
        assert answer.status_code == 200, answer.text
        grant = GrantResponse.model_validate(answer.json())
        # The station side: template from the envelope, key from the bundle's KeyStream state.
        bundle = station.bundle
        template_text = open_sealed(
            bundle.transport_key, base64.b64decode(grant.template),
            template_aad("template", grant.grant_id, grant.device_id),
        )
        assert grant.application is not None
        application_text = open_sealed(
            bundle.transport_key, base64.b64decode(grant.application),
            template_aad("application", grant.grant_id, grant.device_id))
        # The texts the site sealed are the archive's files, byte for byte.
        fixtures = REPO / "fixtures" / PROFILE
        assert bytes(template_text) == (fixtures / "bootloader.hex").read_bytes()
        assert bytes(application_text) == (fixtures / "application.hex").read_bytes()
        with pytest.raises(DecryptError):
            open_sealed(bundle.transport_key, base64.b64decode(grant.template),
                        template_aad("template", grant.grant_id, grant.device_id + 1))
        stream = KeyStream.from_state(bundle.drbg_state.reveal())
        key = stream.key_at(grant.drbg_index, grant.key_size_bytes)
        profile = load_profile(PROFILE)
        layout = profile.patch_layout()
        image = patch(parse_ihex(bytes(template_text).decode("ascii")), layout,
                      grant.device_id, key.reveal())
        digest = image.sha256(layout.image_start, layout.image_end, layout.fill_byte).hex()
        # The key the site stored (wrapped) is the key the station derived.
        ctx = open_site(setup.root)
        try:
            with ctx.factory() as session:
                device = session.get(Device, grant.device_id)
                assert device is not None
                assert device.status == "reserved"
                stored = ctx.keys.unwrap(device.wrapped_key,
                                         device_key_aad(grant.device_id, grant.drbg_index))
                assert bytes(stored.reveal()) == bytes(key.reveal())
                assert device.image_sha256 == digest
        finally:
            ctx.close()
        done = http.post(f"/v1/grants/{grant.grant_id}/complete", headers=auth, json={
            "request_id": "complete-0001", "result": "success", "image_sha256": digest,
            "verified": True,
        })
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "programmed"
        again = http.post(f"/v1/grants/{grant.grant_id}/complete", headers=auth, json={
            "request_id": "complete-0001", "result": "success", "image_sha256": digest,
        })
        assert again.json() == done.json()
        summary = http.get("/v1/orders", headers=auth).json()["orders"][0]
        assert (summary["produced"], summary["reserved"]) == (1, 0)


def _problem(answer: httpx.Response) -> dict[str, object]:
    assert answer.headers["content-type"].startswith(PROBLEM_CONTENT_TYPE)
    body = answer.json()
    assert isinstance(body, dict)
    return body


def test_no_client_certificate_is_refused(served: tuple[SiteSetup, SiteServer]) -> None:
    setup, server = served
    with client(server.url, setup.ca_path, None) as http:
        answer = http.post("/v1/session", json={"operator_id": "alice", "pin": "4711-2342"})
        assert answer.status_code == 403
        assert _problem(answer)["code"] == "station_inactive"


def test_certificate_from_another_ca_fails_the_handshake(
    served: tuple[SiteSetup, SiteServer], tmp_path: Path,
) -> None:
    setup, server = served
    rogue_root = tmp_path / "rogue"
    admin.init_site(rogue_root, site_name="rogue")
    ctx = open_site(rogue_root)
    try:
        rogue = enrol(ctx, rogue_root, "ST-1", tmp_path)
    finally:
        ctx.close()
    with client(server.url, setup.ca_path, rogue) as http, pytest.raises(httpx.TransportError):
        http.get("/v1/orders")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_is_refused(served: tuple[SiteSetup, SiteServer]) -> None:
    setup, server = served
    context = tls_context(setup.ca_path, setup.stations["ST-1"])
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with httpx.Client(base_url=server.url, verify=context) as http, \
            pytest.raises(httpx.TransportError):
        http.get("/v1/health")


@pytest.mark.parametrize(("station_id", "status"), [("ST-2", "suspended"), ("ST-3", "revoked")])
def test_suspended_and_revoked_stations_are_refused(
    served: tuple[SiteSetup, SiteServer], station_id: str, status: str,
) -> None:
    setup, server = served
    station = setup.stations[station_id]
    with client(server.url, setup.ca_path, station) as http:
        auth = sign_in(http)
        ctx = open_site(setup.root)
        try:
            admin.set_station_status(ctx, station_id, status)
        finally:
            ctx.close()
        for answer in (
            http.get("/v1/orders", headers=auth),
            http.post(f"/v1/orders/{setup.order_id}/grants",
                      json=grant_body("77665544", 0), headers=auth),
        ):
            assert answer.status_code == 403
            problem = _problem(answer)
            assert problem["code"] == "station_inactive"
            assert status in str(problem["detail"])



def test_gate_reads_the_station_while_a_writer_holds_the_database(
    served: tuple[SiteSetup, SiteServer],
) -> None:
    """The gate's lookup is one committed read: it does not queue for a grant's write lock."""
    setup, server = served
    pem = setup.stations["ST-1"].cert_path.read_text()
    found: list[GatedStation] = []
    writer = sqlite3.connect(SiteDir(setup.root).database, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # what every grant transaction takes first
        lookup = threading.Thread(
            target=lambda: found.append(station_for_certificate(server.context, pem)))
        lookup.start()
        lookup.join(timeout=10)  # a queued read would wait out the 30 s busy timeout
        assert [(station.station_id, station.status) for station in found] == [
            ("ST-1", "active")]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_gate_reads_a_sqlite_site_on_the_event_loop(
    served: tuple[SiteSetup, SiteServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No request thread for the lookup on SQLite: it cannot queue behind the grants."""
    setup, server = served

    async def no_thread(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("the SQLite lookup hopped to a request thread")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
    pem = setup.stations["ST-1"].cert_path.read_text()
    scope = {"type": "http", "path": "/v1/orders", "state": {},
             "extensions": {"tls": {"client_cert_chain": [pem]}}}
    passed: list[GatedStation] = []

    async def app(scope: dict[str, Any], _receive: object, _send: object) -> None:
        passed.append(scope["state"]["station"])

    asyncio.run(StationGate(app, ctx=server.context)(scope, None, None))
    assert [(station.station_id, station.status) for station in passed] == [("ST-1", "active")]


def test_stop_closes_idle_keep_alive_connections(tmp_path: Path) -> None:
    """A client holding an idle TLS keep-alive connection is dropped, not waited for."""
    setup = build_site(tmp_path, stations=1, quantity=1)
    server = run_in_thread(tmp_path)
    context = ssl.create_default_context(cafile=str(setup.ca_path))
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += tls.recv(65536)
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += tls.recv(65536)
        server.stop()  # the connection is now idle, kept alive by the client
        tls.settimeout(5)
        with contextlib.suppress(ConnectionResetError, ssl.SSLError):
            assert tls.recv(1) == b""  # closed by the server (or reset: gone either way)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)
