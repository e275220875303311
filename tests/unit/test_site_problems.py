"""problem+json rendering at the site's HTTP edge, for every kind of failure."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy.exc import OperationalError

from hex_generator import ZoneError
from provisioner.errors import IndexReused, QuotaExhausted
from provisioner.site.problems import install_problem_handlers
from provisioner.wire import PROBLEM_CONTENT_TYPE, GrantRequest, Problem, refusal_from_problem


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/grant/{kind}")
    def grant(kind: str, body: GrantRequest, request: Request) -> None:
        request.state.request_id = body.request_id
        if kind == "quota":
            raise QuotaExhausted("0 of 10 left")
        if kind == "index":
            raise IndexReused("index 3 behind 7", expected=7)
        if kind == "db":
            raise OperationalError("SELECT secret FROM t", {}, Exception("deadlock detected"))
        raise ZoneError("key", "zone not blank")

    return app


def _post(path: str, body: dict[str, object]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://site") as http:
            return await http.post(path, json=body)

    return asyncio.run(go())


BODY: dict[str, object] = {"request_id": "req-00000001", "chip_uid": "00112233", "drbg_index": 3}


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("quota", 409, "quota_exhausted"), ("index", 409, "index_reused"),
     ("db", 503, "site_unavailable"), ("zone", 500, "site_error")],
)
def test_failures_render_as_problem_json(kind: str, status: int, code: str) -> None:
    answer = _post(f"/grant/{kind}", BODY)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith(PROBLEM_CONTENT_TYPE)
    problem = Problem.model_validate(answer.json())
    assert (problem.code, problem.status, problem.request_id) == (code, status, "req-00000001")
    assert "SELECT" not in problem.detail


def test_index_reused_round_trips_with_its_expected_index() -> None:
    answer = _post("/grant/index", BODY)
    refusal = refusal_from_problem(Problem.model_validate(answer.json()))
    assert isinstance(refusal, IndexReused)
    assert refusal.expected == 7


def test_malformed_body_is_invalid_request_naming_the_field() -> None:
    answer = _post("/grant/quota", {**BODY, "chip_uid": "XYZ"})
    assert answer.status_code == 422
    problem = Problem.model_validate(answer.json())
    assert problem.code == "invalid_request"
    assert "chip_uid" in problem.detail
