"""The database edge: a value it refuses is a 422 without a retry hint; a busy one is a 503."""

from __future__ import annotations

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DataError, OperationalError

from provisioner.site.problems import install_problem_handlers


def _answer(error: Exception) -> httpx.Response:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/fail")
    def fail() -> None:
        raise error

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="https://site") as http:
            return await http.get("/fail")
    return anyio.run(go)


@pytest.mark.parametrize(("error", "status", "code", "retry"), [
    (DataError("INSERT …", {}, ValueError("A string literal cannot contain NUL (0x00)")),
     422, "invalid_request", False),
    (OperationalError("SELECT …", {}, TimeoutError("database is locked")),
     503, "site_unavailable", True),
], ids=["nul-on-postgresql", "busy"])
def test_database_errors(error: Exception, status: int, code: str, retry: bool) -> None:
    answer = _answer(error)
    assert answer.status_code == status
    problem = answer.json()
    assert problem["code"] == code
    assert ("retry" in problem["detail"]) is retry
    assert "INSERT" not in problem["detail"]
    assert "NUL" not in problem["detail"]
