"""Per-source rate limiting: a token bucket per client address, in bounded memory.

For listeners that serve clients without a certificate (field updates): each source may send
``burst`` requests at once and ``rate_per_s`` on average. At most ``max_sources`` buckets are
kept; the least recently seen is dropped first, so a flood of forged sources costs bounded
memory (a dropped source starts again with a full bucket). ``PerSourceRateLimit`` is the ASGI
wrapper; ``RateLimiter`` the pure part, with the clock handed in.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.errors import RateLimited
from provisioner.site.problems import send_refusal
from provisioner.site.tls import ASGIApp


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float


class RateLimiter:
    """Token buckets per source; ``check`` spends one token or raises ``RateLimited``."""

    def __init__(self, *, rate_per_s: float, burst: int, max_sources: int = 10_000) -> None:
        if rate_per_s <= 0 or burst < 1 or max_sources < 1:
            raise ValueError("rate_per_s, burst and max_sources must be positive")
        self._rate_per_s = rate_per_s
        self._burst = float(burst)
        self._max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, source: str, now_s: float) -> None:
        """Spend one token of ``source`` at monotonic time ``now_s``.

        Raises:
            RateLimited: the bucket is empty; ``retry_after_s`` says when a token is back.
        """
        with self._lock:
            bucket = self._buckets.pop(source, None)
            if bucket is None:
                bucket = _Bucket(self._burst, now_s)
                while len(self._buckets) >= self._max_sources:
                    self._buckets.popitem(last=False)
            elapsed = max(0.0, now_s - bucket.updated_s)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate_per_s)
            bucket.updated_s = now_s
            self._buckets[source] = bucket
            if bucket.tokens < 1.0:
                wait_s = (1.0 - bucket.tokens) / self._rate_per_s
                raise RateLimited(f"too many requests from {source}", retry_after_s=wait_s)
            bucket.tokens -= 1.0

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)


class PerSourceRateLimit:
    """ASGI middleware: ``429 rate_limited`` (with ``Retry-After``) past a source's rate.

    The source is the peer address uvicorn puts in ``scope["client"]`` (behind a proxy, pass
    ``source`` to read a trusted header instead). Checked before the app or the body.
    """

    def __init__(
        self, app: ASGIApp, *, limiter: RateLimiter,
        source: Callable[[Any], str] | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._limiter = limiter
        self._source = source or _peer_host
        self._clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            try:
                self._limiter.check(self._source(scope), self._clock())
            except RateLimited as refusal:
                retry_after = str(max(1, math.ceil(refusal.retry_after_s)))
                await send_refusal(scope, send, refusal, headers={"Retry-After": retry_after})
                return
        await self._app(scope, receive, send)


def _peer_host(scope: Any) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
