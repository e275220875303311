"""GET /v1/health."""

from __future__ import annotations

from importlib.metadata import version

from fastapi import APIRouter, Depends

from provisioner.site.context import SiteContext
from provisioner.site.identity import site_context
from provisioner.wire import Health

router = APIRouter()


@router.get("/health", response_model=Health)
def health(ctx: SiteContext = Depends(site_context)) -> Health:  # noqa: B008
    """Liveness: answers without a client certificate."""
    return Health(status="ok", version=version("provisioner"), time=ctx.clock())
