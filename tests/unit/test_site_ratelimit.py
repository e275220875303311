"""Per-source rate limiter and body limit as ASGI pieces (for the update listener, issue 13)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from provisioner.errors import RateLimited
from provisioner.site.bodylimit import BodyLimit
from provisioner.site.ratelimit import PerSourceRateLimit, RateLimiter


def test_a_source_gets_its_burst_then_its_rate() -> None:
    limiter = RateLimiter(rate_per_s=2.0, burst=3)
    for _ in range(3):
        limiter.check("10.0.0.1", 100.0)
    with pytest.raises(RateLimited) as caught:
        limiter.check("10.0.0.1", 100.0)
    assert caught.value.retry_after_s == pytest.approx(0.5)
    limiter.check("10.0.0.2", 100.0)  # another source has its own bucket
    limiter.check("10.0.0.1", 100.5)  # one token back after 1 / rate
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.1", 100.5)


def test_a_flood_of_sources_costs_bounded_memory() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_sources=100)
    for n in range(10_000):
        limiter.check(f"source-{n}", 0.0)
    assert len(limiter) == 100


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def _post(app: Any, content: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="https://update") as http:
            return await http.post("/v1/updates", content=content)
    return anyio.run(go)


def test_the_asgi_rate_limit_answers_429_with_retry_after() -> None:
    clock = iter([0.0, 0.0, 0.0])
    app = PerSourceRateLimit(_echo, limiter=RateLimiter(rate_per_s=0.1, burst=2),
                             clock=lambda: next(clock))
    assert [_post(app, b"x").status_code for _ in range(2)] == [200, 200]
    refused = _post(app, b"x")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "10"
    assert refused.json()["code"] == "rate_limited"


@pytest.mark.parametrize("chunked", [False, True])
def test_the_body_limit_cuts_a_declared_or_streamed_body(chunked: bool) -> None:
    app = BodyLimit(_echo, max_body_bytes=1000)
    assert _post(app, b"x" * 1000).text == "1000"

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 100

    refused = _post(app, stream() if chunked else b"x" * 1001)
    assert refused.status_code == 413
    assert refused.json()["code"] == "body_too_large"
    assert refused.headers["connection"] == "close"
