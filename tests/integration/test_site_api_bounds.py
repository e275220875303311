"""Property: every API request model, path and header, driven outside its bounds, is a 4xx.

Hypothesis builds bodies in which at least one field is off its documented bound or type (bool
for int, int for bool, huge and negative numbers, NaN, NUL and control characters, overlong
text, wrong shapes, unknown fields) and sends them to the real app (certificate gate, body
limit, routes, database) as an enrolled station. Every answer must be a 4xx problem document
with a stable code and no retry hint; nothing may be written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from site_fixtures import SiteSetup, build_site, client, grant_body
from sqlalchemy import func, select

from provisioner.errors import refusal_classes
from provisioner.site.db.models import Device, Grant
from provisioner.site.routes import health, stations
from provisioner.site.server import SiteServer, run_in_thread
from provisioner.wire import (
    MAX_DRBG_INDEX,
    PROBLEM_CONTENT_TYPE,
    CompleteRequest,
    EnrolmentConfirmation,
    GrantRequest,
    SessionRequest,
    StationAlarm,
)

KNOWN_CODES = set(refusal_classes()) | {"not_found", "method_not_allowed"}
EXAMPLES = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass
class Api:
    setup: SiteSetup
    server: SiteServer
    http: httpx.Client
    auth: dict[str, str]
    grant_id: str


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("site")
    setup = build_site(root, quantity=50)
    server = run_in_thread(root)
    with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
        token = http.post("/v1/session", json={"operator_id": "alice", "pin": "4711-2342"})
        auth = {"Authorization": f"Bearer {token.json()['session_token']}"}
        grant = http.post("/v1/orders/o-test/grants", json=grant_body("0a0b0c0d", 0),
                          headers=auth)
        assert grant.status_code == 200, grant.text
        yield Api(setup, server, http, auth, grant.json()["grant_id"])
    server.stop()


def _written(api: Api) -> tuple[int, int]:
    with api.server.context.factory() as session:
        return (session.scalar(select(func.count()).select_from(Device)) or 0,
                session.scalar(select(func.count()).select_from(Grant)) or 0)


def _assert_4xx_problem(answer: Any) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert answer.headers["content-type"].startswith(PROBLEM_CONTENT_TYPE), answer.text[:300]
    problem = answer.json()
    assert problem["code"] in KNOWN_CODES, problem
    assert problem["status"] == answer.status_code
    assert "retry" not in problem["detail"].lower()


# --- values off their bounds -------------------------------------------------------------

_junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=3),
)
_bad_text = st.one_of(
    st.text(min_size=1, max_size=20).map(lambda t: t + "\x00"),
    st.sampled_from(["a/b", "<b>x</b>", "a b", "", "-lead", "é", "\x7f", "x" * 65]),
)
_bad_index = st.one_of(
    st.booleans(), st.integers(max_value=-1), st.integers(min_value=MAX_DRBG_INDEX + 1),
    st.floats(), st.text(max_size=5), st.none(),
)
_bad_uid = st.one_of(st.text(max_size=70).filter(lambda t: not t.isalnum()),
                     st.sampled_from(["ABCDEF01", "0011", "00" * 33]), st.integers())
_bad_flag = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats())
_bad_timings = st.one_of(
    st.dictionaries(st.text(min_size=1, max_size=5), st.floats(min_value=0, max_value=1),
                    min_size=17, max_size=30),
    st.dictionaries(st.sampled_from(["erase", "x" * 40, "Bad", "a-b"]),
                    st.one_of(st.booleans(), st.floats(min_value=1e9 + 1), st.just(-1.0),
                              st.text(max_size=3)), min_size=1, max_size=3),
    st.lists(st.integers(), max_size=2),
)

VALID: dict[type, dict[str, Any]] = {
    SessionRequest: {"operator_id": "alice", "pin": "4711-2342"},
    GrantRequest: {"request_id": "req-bounds-1", "chip_uid": "0a0b0c0e", "drbg_index": 1},
    CompleteRequest: {"request_id": "complete-bounds", "result": "failure",
                      "error_code": "link_timeout", "error": "no answer",
                      "timings_ms": {"erase": 1.5}, "verified": False, "protected": False,
                      "image_sha256": "0" * 64},
    StationAlarm: {"code": "journal_forged", "detail": "row 3"},
    EnrolmentConfirmation: {"request_id": "enrol-bounds-1"},
}
BAD: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    SessionRequest: {"operator_id": _bad_text, "pin": st.one_of(
        st.just(""), st.text(min_size=65, max_size=70), st.just("12\x0034"), st.integers())},
    GrantRequest: {"request_id": st.one_of(_bad_text, st.just("short")), "chip_uid": _bad_uid,
                   "drbg_index": _bad_index},
    CompleteRequest: {
        "request_id": _bad_text, "result": st.one_of(st.just("succeeded"), st.integers()),
        "error_code": st.one_of(_bad_text, st.just("x" * 65), st.just("Link_Timeout")),
        "error": st.one_of(st.just("e" * 2001), st.just("a\x00b"), st.just("\x1b[2J")),
        "timings_ms": _bad_timings, "verified": _bad_flag, "protected": _bad_flag,
        "image_sha256": st.one_of(st.just("A" * 64), st.just("0" * 63), st.integers()),
    },
    StationAlarm: {"code": st.one_of(st.just("all_fine"), st.integers()),
                   "detail": st.one_of(st.just("d" * 501), st.just("\x00"), st.none())},
    EnrolmentConfirmation: {"request_id": st.one_of(_bad_text, st.just("short"),
                                                    st.integers(), st.none())},
}
ROUTES = {
    SessionRequest: "/v1/session", GrantRequest: "/v1/orders/o-test/grants",
    CompleteRequest: "/v1/grants/{grant_id}/complete", StationAlarm: "/v1/alarms",
    EnrolmentConfirmation: "/v1/enrolment",
}


@st.composite
def _off_bounds(draw: st.DrawFn, model: type) -> dict[str, Any]:
    body = dict(VALID[model])
    bad_fields = draw(st.lists(st.sampled_from(sorted(BAD[model])), min_size=1, max_size=3,
                               unique=True))
    for name in bad_fields:
        body[name] = draw(BAD[model][name])
    if draw(st.booleans()):
        body[draw(st.sampled_from(["extra", "station_id", "drbg_index "]))] = draw(_junk)
    others = sorted(set(body) - set(bad_fields))
    if others and draw(st.integers(0, 9)) == 0:
        body.pop(draw(st.sampled_from(others)))  # a missing field too, the bad ones stay
    return body


def test_every_request_model_of_the_app_is_covered() -> None:
    routes = [route for router in (health.router, stations.router) for route in router.routes
              if isinstance(route, APIRoute)]
    in_app = {param.field_info.annotation
              for route in routes for param in route.dependant.body_params}
    assert in_app == set(VALID) == set(BAD) == set(ROUTES)
    posted = {f"/v1{route.path}" for route in routes if "POST" in route.methods}
    assert posted == {path.replace("o-test", "{order_id}") for path in ROUTES.values()}


def test_the_valid_bodies_are_valid() -> None:
    for model, body in VALID.items():
        model.model_validate(body)


@pytest.mark.parametrize("model", list(VALID), ids=lambda m: m.__name__)
def test_bodies_off_their_bounds_are_4xx_problems(api: Api, model: type) -> None:
    before = _written(api)
    path = ROUTES[model].format(grant_id=api.grant_id)

    @EXAMPLES
    @given(body=_off_bounds(model))
    def check(body: dict[str, Any]) -> None:
        content = json.dumps(body, allow_nan=True).encode()
        answer = api.http.post(path, content=content, headers={
            **api.auth, "Content-Type": "application/json"})
        _assert_4xx_problem(answer)

    check()
    assert _written(api) == before


@EXAMPLES
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                     st.recursive(_junk, lambda inner: st.lists(inner, max_size=3)
                                  | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                                  max_leaves=10).map(lambda v: json.dumps(v).encode())))
def test_arbitrary_bytes_as_any_body_are_4xx_problems(api: Api, raw: bytes) -> None:
    for path in ROUTES.values():
        answer = api.http.post(path.format(grant_id=api.grant_id), content=raw,
                               headers={**api.auth, "Content-Type": "application/json"})
        _assert_4xx_problem(answer)


@EXAMPLES
@given(segment=st.one_of(_bad_text.filter(lambda t: "/" not in t and t), st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), min_size=65, max_size=80)))
def test_ids_off_their_bounds_in_paths_are_4xx_problems(api: Api, segment: str) -> None:
    from urllib.parse import quote

    quoted = quote(segment, safe="")
    for path in (f"/v1/orders/{quoted}/grants", f"/v1/grants/{quoted}/complete"):
        body = VALID[GrantRequest] if "orders" in path else VALID[CompleteRequest]
        _assert_4xx_problem(api.http.post(path, json=body, headers=api.auth))


@EXAMPLES
@given(header=st.one_of(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                                max_size=300).filter(lambda h: h == h.strip()),
                        st.just("Bearer " + "a" * 129),
                        st.just("Bearer short"), st.just("Basic YWxpY2U6eA==")))
def test_bad_authorization_headers_are_401_problems(api: Api, header: str) -> None:
    answer = api.http.get("/v1/orders", headers={"Authorization": header})
    _assert_4xx_problem(answer)
    assert answer.json()["code"] == "authentication_failed"
