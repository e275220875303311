"""Both listeners' apps run request work on site.json ``request_threads`` threads."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from fastapi import FastAPI
from site_fixtures import build_site

from provisioner.site.app import create_app, create_update_app
from provisioner.site.context import SiteContext, open_site
from provisioner.site.sitedir import SiteDir


async def _threads_while_serving(app: FastAPI) -> int:
    """Run the app's lifespan as a server does; return the request threads inside it."""
    async with app.router.lifespan_context(app):
        return int(anyio.to_thread.current_default_thread_limiter().total_tokens)


@pytest.mark.parametrize("build", [create_app, create_update_app])
def test_listener_uses_the_configured_request_threads(
        tmp_path: Path, build: Callable[[SiteContext], FastAPI]) -> None:
    build_site(tmp_path)
    paths = SiteDir(tmp_path)
    paths.write_settings(dataclasses.replace(paths.read_settings(), request_threads=3))
    ctx = open_site(tmp_path)
    try:
        assert anyio.run(_threads_while_serving, build(ctx)) == 3
    finally:
        ctx.close()
