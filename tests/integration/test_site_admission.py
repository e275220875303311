"""Overload: grant requests past the per-process bound are answered site_unavailable at once."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from site_fixtures import SiteSetup, build_site, client, grant_body, sign_in
from sqlalchemy import func, select

from provisioner.site.admission import is_grant_path
from provisioner.site.db.models import AuditRow, Grant
from provisioner.site.routes import stations
from provisioner.site.server import SiteServer, run_in_thread
from provisioner.site.sitedir import SiteDir
from provisioner.wire import PROBLEM_CONTENT_TYPE

QUEUE = 2


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[SiteSetup, SiteServer]]:
    setup = build_site(tmp_path, stations=QUEUE + 1, quantity=10)
    # One request thread more than the held grants: another request finds a free thread, so
    # what these tests see is the admission bound alone.
    paths = SiteDir(tmp_path)
    paths.write_settings(dataclasses.replace(paths.read_settings(), request_threads=QUEUE + 1))
    server = run_in_thread(tmp_path, grant_queue=QUEUE)
    try:
        yield setup, server
    finally:
        server.stop()


def _count(server: SiteServer, model: Any) -> int:
    with server.context.factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@contextmanager
def _queue_held(site: tuple[SiteSetup, SiteServer], monkeypatch: pytest.MonkeyPatch,
                chip_prefix: str) -> Iterator[tuple[list[httpx.Client], list[dict[str, str]]]]:
    """Hold QUEUE grants inside the site; yield every station's client and auth header.

    Leaving the block releases the held grants and checks they were all granted.
    """
    setup, server = site
    entered = threading.Semaphore(0)
    release = threading.Event()
    real_issue = stations.issue_grant

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.release()
        assert release.wait(timeout=30)
        return real_issue(*args, **kwargs)

    with ExitStack() as stack:
        https = [stack.enter_context(client(server.url, setup.ca_path, station))
                 for station in setup.stations.values()]
        auths = [sign_in(http) for http in https]
        monkeypatch.setattr(stations, "issue_grant", held)
        with ThreadPoolExecutor(QUEUE) as pool:
            running = [pool.submit(https[n].post, f"/v1/orders/{setup.order_id}/grants",
                                   json=grant_body(f"{chip_prefix}{n:04x}", 0),
                                   headers=auths[n])
                       for n in range(QUEUE)]
            for _ in range(QUEUE):  # all are inside the site, holding their places
                assert entered.acquire(timeout=30)
            try:
                yield https, auths
            finally:
                release.set()
            assert [answer.result().status_code for answer in running] == [200] * QUEUE


def test_a_grant_past_the_queue_is_refused_busy_at_once_and_its_retry_succeeds(
    site: tuple[SiteSetup, SiteServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup, server = site
    body = grant_body("cc00ffff", 0)
    with _queue_held(site, monkeypatch, "cc00") as (https, auths):
        audit_before = _count(server, AuditRow)
        busy = https[QUEUE].post(f"/v1/orders/{setup.order_id}/grants", json=body,
                                 headers=auths[QUEUE])
        # Answered while the queue is full: nothing of it reached the grant code.
        assert busy.status_code == 503
        assert busy.headers["content-type"] == PROBLEM_CONTENT_TYPE
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["code"] == "site_unavailable"
        assert _count(server, AuditRow) == audit_before
    with client(server.url, setup.ca_path, list(setup.stations.values())[QUEUE]) as http:
        auth = sign_in(http)
        retried = http.post(f"/v1/orders/{setup.order_id}/grants", json=body, headers=auth)
        assert retried.status_code == 200, retried.text
        again = http.post(f"/v1/orders/{setup.order_id}/grants", json=body, headers=auth)
        assert again.json()["grant_id"] == retried.json()["grant_id"]  # idempotent retry
    assert _count(server, Grant) == QUEUE + 1


def test_other_requests_are_not_bounded(
    site: tuple[SiteSetup, SiteServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _queue_held(site, monkeypatch, "dd00") as (https, auths):
        orders = https[QUEUE].get("/v1/orders", headers=auths[QUEUE])
        assert orders.status_code == 200


@pytest.mark.parametrize(("method", "path", "bounded"), [
    ("POST", "/v1/orders/o-1/grants", True),
    ("POST", "/v1/grants/g-1/complete", True),
    ("GET", "/v1/orders", False),
    ("POST", "/v1/session", False),
    ("GET", "/v1/orders/o-1/grants", False),
])
def test_which_requests_count(method: str, path: str, bounded: bool) -> None:
    assert is_grant_path(method, path) is bounded
