"""site.json: request_threads is optional (default 2), kept on rewrite, bounded 1..256."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.site.sitedir import (
    DEFAULT_REQUEST_THREADS,
    SiteDir,
    SiteDirError,
    SiteSettings,
)


def _site(tmp_path: Path, **extra: object) -> SiteDir:
    paths = SiteDir(tmp_path)
    paths.settings.write_text(json.dumps({"site_name": "s", "db_url": "sqlite:///x", **extra}),
                              encoding="utf-8")
    return paths


def test_request_threads_default_and_round_trip(tmp_path: Path) -> None:
    paths = _site(tmp_path)
    assert paths.read_settings().request_threads == DEFAULT_REQUEST_THREADS == 2
    paths.write_settings(SiteSettings(site_name="s", db_url="sqlite:///x", request_threads=6))
    assert paths.read_settings().request_threads == 6


@pytest.mark.parametrize("value", [0, 257, True, "2", 2.0, None])
def test_request_threads_out_of_bounds_is_refused_by_name(tmp_path: Path, value: object) -> None:
    with pytest.raises(SiteDirError, match="request_threads must be an integer from 1 to 256"):
        _site(tmp_path, request_threads=value).read_settings()
