"""The site's ASGI application (FastAPI): certificate gate, body limit, station API, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from provisioner.site.admission import GrantAdmission
from provisioner.site.bodylimit import BodyLimit
from provisioner.site.context import SiteContext
from provisioner.site.gate import StationGate
from provisioner.site.lane import GrantLane
from provisioner.site.problems import install_problem_handlers
from provisioner.site.ratelimit import PerSourceRateLimit, RateLimiter
from provisioner.site.routes import health, stations, updates
from provisioner.site.updates.service import UpdateService
from provisioner.wire import API_PREFIX

# Request handlers run in a thread pool (their database calls block): site.json
# ``request_threads`` threads per process (``sitedir.DEFAULT_REQUEST_THREADS`` says why few).
# Grant requests one process works on or queues for a request thread; beyond them the
# answer is site_unavailable at once (the station retries with the same request_id).
GRANT_QUEUE = 32


def create_app(ctx: SiteContext, *, grant_queue: int = GRANT_QUEUE) -> FastAPI:
    """Build the app serving ``ctx``.

    In front of the routes: ``StationGate`` (no work before a station's certificate is
    verified), ``GrantAdmission`` (at most ``grant_queue`` grant requests at once, the rest
    are refused as busy; grants and completions then run in ``GrantLane``) and ``BodyLimit``
    (``max_body_bytes`` from site.json). The OpenAPI document (/v1/openapi.json, /v1/docs) is
    off unless site.json sets ``"openapi": true``, and then it too needs a station certificate.
    """
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            ctx.settings.request_threads)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="provisioner site",
        openapi_url=f"{API_PREFIX}/openapi.json" if ctx.settings.openapi else None,
        docs_url=f"{API_PREFIX}/docs" if ctx.settings.openapi else None,
        redoc_url=None,
    )
    # Behind the gate every caller is an enrolled station: it surely reads its 413.
    app.add_middleware(BodyLimit, max_body_bytes=ctx.settings.max_body_bytes, close=False)
    app.add_middleware(GrantAdmission, max_in_flight=grant_queue)
    app.add_middleware(StationGate, ctx=ctx)  # added last: runs first
    app.state.site = ctx
    app.state.grant_lane = GrantLane(on_loop=ctx.engine.dialect.name == "postgresql")
    install_problem_handlers(app)
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(stations.router, prefix=API_PREFIX)
    return app


# Per source address on the update listener: sustained requests per second and burst.
UPDATE_RATE_PER_S = 20.0
UPDATE_BURST = 40
UPDATE_MAX_BODY_BYTES = 4096  # a request or result body is a few hundred bytes


def create_update_app(ctx: SiteContext, *, rate_per_s: float = UPDATE_RATE_PER_S,
                      burst: int = UPDATE_BURST) -> FastAPI:
    """Build the update listener's app: POST /v1/updates and results, health, problem+json."""
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            ctx.settings.request_threads)
        yield
        service.images.wipe()

    app = FastAPI(lifespan=lifespan, title="provisioner site updates",
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None)
    service = UpdateService.open(ctx)
    app.state.site = ctx
    app.state.updates = service
    install_problem_handlers(app)
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(updates.router, prefix=API_PREFIX)
    app.add_middleware(BodyLimit, max_body_bytes=UPDATE_MAX_BODY_BYTES)
    app.add_middleware(PerSourceRateLimit,  # added last: runs first
                       limiter=RateLimiter(rate_per_s=rate_per_s, burst=burst))
    return app
