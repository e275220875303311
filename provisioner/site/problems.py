"""RFC 9457 problem+json responses for refusals, malformed requests and site errors."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hex_generator import HexError
from hw_profiles import ProfileValidationError
from provisioner.errors import InvalidRequest, ProvisionerError, Refused, SiteBusy
from provisioner.wire import PROBLEM_CONTENT_TYPE, Problem, problem_from_refusal


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def problem_response(problem: Problem) -> JSONResponse:
    """Render a problem document with the problem+json media type."""
    return JSONResponse(
        problem.model_dump(exclude_none=True), status_code=problem.status,
        media_type=PROBLEM_CONTENT_TYPE,
    )


async def send_refusal(
    scope: Any, send: Any, refusal: Refused, headers: dict[str, str] | None = None, *,
    close: bool = True,
) -> None:
    """Answer an ASGI request with a refusal's problem document (for middleware).

    ``close``: say ``Connection: close``, so the server drops the connection instead of
    reading and discarding the unread rest of the body (no work for an unknown client; the
    client may then see a reset before it reads the answer). Without it the server discards
    the rest as it arrives, in constant memory, and the answer reliably reaches the client.
    """

    async def no_body() -> Any:
        return {"type": "http.disconnect"}

    response = problem_response(problem_from_refusal(refusal, None))
    response.headers.update({"Connection": "close"} if close else {})
    response.headers.update(headers or {})
    await response(scope, no_body, send)


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return problem_response(problem_from_refusal(exc, _request_id(request)))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    where = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
        for err in exc.errors()
    )
    return problem_response(problem_from_refusal(InvalidRequest(where), _request_id(request)))


async def _site_error(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(Problem(
        type="urn:provisioner:problem:site_error", title="site error", status=500,
        detail=f"{type(exc).__name__}: {exc}", code="site_error",
        request_id=_request_id(request),
    ))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # The database edge: a deadlock, a lost connection or a timeout. Nothing was committed,
    # so the station may retry with the same request_id (SQL text is kept out of the answer).
    busy = SiteBusy(f"database error ({type(exc).__name__}); retry with the same request_id")
    return problem_response(problem_from_refusal(busy, _request_id(request)))


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value (a NUL byte in text on PostgreSQL, a number out of range):
    # the same request can never succeed, so it is a 422, never a retry hint.
    refusal = InvalidRequest(f"a value the database cannot store ({type(exc).__name__})")
    return problem_response(problem_from_refusal(refusal, _request_id(request)))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    # Routing answers (no such path, wrong method) as problem documents too.
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return problem_response(Problem(
        type=f"urn:provisioner:problem:{code}", title=code.replace("_", " "),
        status=exc.status_code, detail=str(exc.detail), code=code,
        request_id=_request_id(request),
    ))


_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}


def install_problem_handlers(app: FastAPI) -> None:
    """Render refusals, validation errors and site-side failures as problem+json."""
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in (ProvisionerError, HexError, ProfileValidationError):
        app.add_exception_handler(error, _site_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(DataError, _data_error)
