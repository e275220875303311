"""Process hardening shared by the site and the station processes."""

from __future__ import annotations

import resource


def disable_core_dumps() -> None:
    """Forbid core dumps of this process: they would hold keys and images (design §3)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
