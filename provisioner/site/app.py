"""The site's ASGI application (FastAPI): station API, health, OpenAPI, problem+json."""

from __future__ import annotations

from fastapi import FastAPI

from provisioner.site.context import SiteContext
from provisioner.site.problems import install_problem_handlers
from provisioner.site.routes import health, stations
from provisioner.wire import API_PREFIX


def create_app(ctx: SiteContext) -> FastAPI:
    """Build the app serving ``ctx``; the OpenAPI document is at /v1/openapi.json."""
    app = FastAPI(
        title="provisioner site",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.site = ctx
    install_problem_handlers(app)
    app.include_router(health.router, prefix=API_PREFIX)
    app.include_router(stations.router, prefix=API_PREFIX)
    return app
