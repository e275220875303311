"""Issue 11 §1, §3, §4 as attacks on the real TLS site, on SQLite and on PostgreSQL.

A huge or bool index, a flood completion, NUL bytes in ids, paths and text, ids the API could
never reach: every one is a 4xx problem document with a stable code (never a 5xx, never a
retry hint), nothing is written, and the site keeps serving the honest station meanwhile.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from site_fixtures import (
    SiteSetup,
    build_site,
    client,
    grant_body,
    postgres_database,
    request_head,
    sign_in,
    stream_body,
    tls_context,
)
from sqlalchemy import event, func, select

from provisioner.cli import main
from provisioner.crypto.keystream import KeyStream
from provisioner.errors import InvalidRequest
from provisioner.site import admin, catalogue
from provisioner.site.context import KeyStreams
from provisioner.site.db.models import AuditRow, Device, Grant, Station
from provisioner.site.server import SiteServer, run_in_thread
from provisioner.site.sitedir import SiteDir
from provisioner.wire import PROBLEM_CONTENT_TYPE

WINDOW = 64


@dataclass
class Bench:
    setup: SiteSetup
    server: SiteServer
    http: httpx.Client
    auth: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bench(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Bench]:
    with _database(request.param) as db_url:
        root = tmp_path_factory.mktemp(f"site-{request.param}")
        setup = build_site(root, db_url=db_url, stations=2, quantity=50)
        paths = SiteDir(root)
        paths.write_settings(dataclasses.replace(paths.read_settings(), index_window=WINDOW,
                                                 openapi=True))
        server = run_in_thread(root)
        http = client(server.url, setup.ca_path, setup.stations["ST-1"])
        try:
            yield Bench(setup, server, http, sign_in(http))
        finally:
            http.close()
            server.stop()


def _database(kind: str) -> Any:
    if kind == "postgresql":
        return postgres_database()
    return _no_url()


@dataclasses.dataclass
class _NoUrl:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


def _no_url() -> _NoUrl:
    return _NoUrl()


def _state(bench: Bench) -> tuple[int, ...]:
    with bench.server.context.factory() as session:
        return (
            session.scalar(select(func.count()).select_from(Device)) or 0,
            session.scalar(select(func.count()).select_from(Grant)) or 0,
            session.scalar(select(func.count()).select_from(AuditRow)) or 0,
            *session.scalars(select(Station.next_index).order_by(Station.station_id)),
        )


def _problem(answer: httpx.Response, code: str, status: int = 422) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_CONTENT_TYPE)
    problem: dict[str, Any] = answer.json()
    assert problem["code"] == code
    assert "retry" not in problem["detail"]
    return problem


def _next_index(bench: Bench) -> int:
    with bench.server.context.factory() as session:
        station = session.get(Station, "ST-1")
        assert station is not None
        return station.next_index


def _post_grant(bench: Bench, body: dict[str, object], order_id: str = "o-test"
                ) -> httpx.Response:
    return bench.http.post(f"/v1/orders/{order_id}/grants", json=body, headers=bench.auth)


def test_a_huge_index_is_refused_at_once_and_the_site_keeps_serving(bench: Bench) -> None:
    before = _state(bench)
    _problem(_post_grant(bench, grant_body("a1000001", 10**100)), "invalid_request")
    _problem(_post_grant(bench, grant_body("a1000001", 2**63)), "invalid_request")
    beyond = _next_index(bench) + WINDOW + 1
    problem = _problem(_post_grant(bench, grant_body("a1000001", beyond)), "index_out_of_window")
    assert f"more than {WINDOW} past" in problem["detail"]
    assert _state(bench)[:2] == before[:2]  # refusals are audited, nothing else is written
    with client(bench.server.url, bench.setup.ca_path, bench.setup.stations["ST-2"]) as other:
        honest = other.post("/v1/orders/o-test/grants", json=grant_body("a1000002", 0),
                            headers=sign_in(other))
        assert honest.status_code == 200, honest.text
    at_edge = _post_grant(bench, grant_body("a1000003", _next_index(bench) + WINDOW))
    assert at_edge.status_code == 200, at_edge.text


def test_openapi_when_switched_on_is_served_only_to_a_station_certificate(bench: Bench) -> None:
    with client(bench.server.url, bench.setup.ca_path, None) as anonymous:
        for path in ("/v1/openapi.json", "/v1/docs"):
            _problem(anonymous.get(path), "station_inactive", 403)
    document = bench.http.get("/v1/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    # The routes answer a Response of their own; the document still names the wire model.
    for path, answer_model, body_model, name in (
        ("/v1/orders/{order_id}/grants", "GrantResponse", "GrantRequest", "order_id"),
        ("/v1/grants/{grant_id}/complete", "CompleteResponse", "CompleteRequest", "grant_id"),
    ):
        operation = paths[path]["post"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{answer_model}"}
        # What they read: the body's wire model and the path identifier.
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{body_model}"}
        assert [p["name"] for p in operation["parameters"]] == [name]
        assert set(schemas[body_model]["required"]) >= {"request_id"}
    assert "AttemptResult" in schemas  # what CompleteRequest refers to is there too
    assert bench.http.get("/v1/docs").status_code == 200


def test_json_true_is_no_index_and_no_flag(bench: Bench) -> None:
    before = _state(bench)
    _problem(_post_grant(bench, grant_body("a2000001", True)), "invalid_request")  # type: ignore[arg-type]
    _problem(_post_grant(bench, {**grant_body("a2000001", 1), "drbg_index": "1"}),
             "invalid_request")
    assert _state(bench) == before


def _granted(bench: Bench, chip_uid: str) -> str:
    answer = _post_grant(bench, grant_body(chip_uid, _next_index(bench)))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["grant_id"])


@pytest.mark.parametrize("flood", [
    {"error_code": "x" * 60_000},
    {"timings_ms": {f"t{n}": 1.0 for n in range(2_000)}},
    {"timings_ms": {"erase" * 10: 1.0}},
    {"timings_ms": {"erase": 1e300}},
    {"error": "e" * 2_001},
    {"verified": 1},
], ids=["error_code", "many-timings", "long-timing-name", "huge-timing", "error", "int-flag"])
def test_a_flood_completion_is_refused_and_never_signed(
    bench: Bench, flood: dict[str, object],
) -> None:
    grant_id = _granted(bench, f"b{abs(hash(str(flood))) % 10**7:07d}")
    before = _state(bench)
    body = {"request_id": "complete-flood", "result": "failure", **flood}
    answer = bench.http.post(f"/v1/grants/{grant_id}/complete", json=body, headers=bench.auth)
    _problem(answer, "invalid_request")
    assert _state(bench) == before
    honest = {"request_id": "complete-honest", "result": "failure", "error_code": "link_timeout",
              "timings_ms": {"erase": 12.5}}
    done = bench.http.post(f"/v1/grants/{grant_id}/complete", json=honest, headers=bench.auth)
    assert done.status_code == 200, done.text


def test_a_4_mib_completion_is_cut_off_at_the_body_limit(bench: Bench) -> None:
    grant_id = _granted(bench, "b9000001")
    before = _state(bench)
    station = bench.setup.stations["ST-1"]
    head = request_head(f"/v1/grants/{grant_id}/complete", (
        f"Authorization: {bench.auth['Authorization']}\r\nContent-Length: {4 * 2**20}\r\n"
    ).encode())
    for chunked in (False, True):
        answer = stream_body(bench.server.port, tls_context(bench.setup.ca_path, station),
                             head if not chunked else head.replace(
                                 b"Content-Length: 4194304", b"Transfer-Encoding: chunked"),
                             4 * 2**20, chunked=chunked)
        assert answer.startswith(b"HTTP/1.1 413"), (chunked, answer[:200])
        assert b'"code":"body_too_large"' in answer
    assert _state(bench) == before


@pytest.mark.parametrize("body", [
    {"operator_id": "alice\x00", "pin": "4711-2342"},
    {"operator_id": "alice", "pin": "4711\x002342"},
], ids=["operator_id", "pin"])
def test_a_nul_byte_in_a_sign_in_is_a_422(bench: Bench, body: dict[str, str]) -> None:
    before = _state(bench)
    _problem(bench.http.post("/v1/session", json=body), "invalid_request")
    assert _state(bench) == before


@pytest.mark.parametrize(("path", "code", "status"), [
    ("/v1/orders/o-test%00/grants", "invalid_request", 422),
    ("/v1/orders/%3Cb%3E/grants", "invalid_request", 422),
    ("/v1/orders/o%2Ftest/grants", "not_found", 404),  # decoded: a path with no route
], ids=["nul", "markup", "slash"])
def test_a_bad_id_in_a_path_is_a_4xx_problem(
    bench: Bench, path: str, code: str, status: int,
) -> None:
    before = _state(bench)
    answer = bench.http.post(path, json=grant_body("c1000001", _next_index(bench)),
                             headers=bench.auth)
    _problem(answer, code, status)
    assert _state(bench) == before


def test_a_nul_byte_in_completion_text_is_a_422(bench: Bench) -> None:
    grant_id = _granted(bench, "c2000001")
    before = _state(bench)
    for field in ({"error": "flash\x00died"}, {"error_code": "x\x00"}):
        body = {"request_id": "complete-nul", "result": "failure", **field}
        answer = bench.http.post(f"/v1/grants/{grant_id}/complete", json=body,
                                 headers=bench.auth)
        _problem(answer, "invalid_request")
    assert _state(bench) == before


@pytest.mark.parametrize("bad_id", ["o/1", "a b", "<b>x</b>", "x" * 65, "", "-lead", "é"])
def test_the_admin_cli_and_the_api_share_one_id_character_set(
    bench: Bench, bad_id: str,
) -> None:
    ctx = bench.server.context
    with pytest.raises(InvalidRequest, match="is not an id"):
        catalogue.create_order(ctx, product="widget", profile="stm32f103c8", quantity=1,
                               bootloader="1.0", order_id=bad_id)
    with pytest.raises(InvalidRequest, match="is not an id"):
        admin.add_operator(ctx, bad_id, "5821-9037")
    with pytest.raises(InvalidRequest, match="is not an id"):
        admin.add_station(ctx, bench.setup.root, bad_id, "https://127.0.0.1")


def test_the_admin_cli_refuses_an_unreachable_order_id_in_one_line(bench: Bench) -> None:
    result = CliRunner().invoke(main, [
        "site", "--site-dir", str(bench.setup.root), "order", "create", "--product", "widget",
        "--profile", "stm32f103c8", "--quantity", "1", "--bootloader", "1.0",
        "--order-id", "o/slash",
    ])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: invalid_request: order id 'o/slash' is not an id: 1-64 characters of A-Z a-z "
        "0-9 . _ -, starting with a letter or digit"]


@pytest.mark.parametrize("pin", ["1", "0000", "1111", "123456", "111111"])
def test_operator_add_refuses_trivial_pins(bench: Bench, pin: str, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(pin + "\n")
    result = CliRunner().invoke(main, [
        "site", "--site-dir", str(bench.setup.root), "operator", "add", "weak-op",
        "--pin-file", str(pin_file),
    ])
    assert result.exit_code == 1
    assert result.output.startswith("Error: invalid_request: PIN refused: it ")
    assert "weak-op" not in [row[0] for row in admin.list_operators(bench.server.context)]


def test_a_cold_key_stream_is_fast_forwarded_before_any_lock(
    bench: Bench, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a restart the site re-derives a station's stream from index 0: not under a lock."""
    ctx = bench.server.context
    with ctx.factory() as session, session.begin():
        station = session.get(Station, "ST-1")
        assert station is not None
        station.next_index = 20_000
    ctx.keystreams = KeyStreams(ctx.keys)  # a new process: nothing cached
    inside = threading.local()
    steps: list[tuple[int, bool]] = []
    real_advance = KeyStream.advance_to

    def began(_conn: Any) -> None:
        inside.flag = True

    def ended(_conn: Any) -> None:
        inside.flag = False

    def counted(stream: KeyStream, index: int) -> None:
        steps.append((index - stream.next_index, getattr(inside, "flag", False)))
        real_advance(stream, index)

    # Any open transaction counts as locked (SQLite's BEGIN IMMEDIATE takes the write lock).
    hooks = (("begin", began), ("commit", ended), ("rollback", ended))
    for name, hook in hooks:
        event.listen(ctx.engine, name, hook)
    monkeypatch.setattr(KeyStream, "advance_to", counted)
    try:
        answer = _post_grant(bench, grant_body("d1000001", 20_000))
    finally:
        for name, hook in hooks:
            event.remove(ctx.engine, name, hook)
    assert answer.status_code == 200, answer.text
    assert sum(n for n, locked in steps if not locked) == 20_000
    assert sum(n for n, locked in steps if locked) == 0
