"""Where grants run (``site/lane.py``): on PostgreSQL on the event loop one at a time, on SQLite
in request threads; and the overload bound still answers busy at once while grants queue."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from site_fixtures import DATABASES, SiteSetup, build_site, client, grant_body, sign_in

from provisioner.site.db import engine
from provisioner.site.lane import GrantLane
from provisioner.site.routes import stations
from provisioner.site.server import SiteServer, run_in_thread

QUEUE = 3


@contextmanager
def _serving(database: str, root: Path) -> Iterator[tuple[SiteSetup, SiteServer]]:
    with ExitStack() as stack:
        db_url = stack.enter_context(DATABASES[database]())
        setup = build_site(root, db_url=db_url, stations=QUEUE + 1, quantity=20)
        server = run_in_thread(root, grant_queue=QUEUE)
        stack.callback(server.stop)
        yield setup, server


@pytest.fixture(params=sorted(DATABASES))
def served(request: pytest.FixtureRequest, tmp_path: Path
           ) -> Iterator[tuple[SiteSetup, SiteServer]]:
    with _serving(request.param, tmp_path) as site:
        yield site


@pytest.fixture
def served_on_postgresql(tmp_path: Path) -> Iterator[tuple[SiteSetup, SiteServer]]:
    # SQLite grants run in request threads: test_site_admission holds those.
    with _serving("postgresql", tmp_path) as site:
        yield site


def _lane(server: SiteServer) -> GrantLane:
    lane = server.app.state.grant_lane
    assert isinstance(lane, GrantLane)
    return lane


def _clients(stack: ExitStack, setup: SiteSetup, server: SiteServer
             ) -> list[tuple[httpx.Client, dict[str, str]]]:
    https = [stack.enter_context(client(server.url, setup.ca_path, station))
             for station in setup.stations.values()]
    return [(http, sign_in(http)) for http in https]


def test_grants_run_on_the_loop_one_at_a_time_on_postgresql_else_in_threads(
    served: tuple[SiteSetup, SiteServer], monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup, server = served
    real_issue = stations.issue_grant
    threads: list[str] = []
    running, most = 0, 0
    guard = threading.Lock()

    def watched(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
            threads.append(threading.current_thread().name)
        try:
            return real_issue(*args, **kwargs)
        finally:
            with guard:
                running -= 1

    monkeypatch.setattr(stations, "issue_grant", watched)
    def three_grants(link: tuple[httpx.Client, dict[str, str]], n: int) -> list[int]:
        http, auth = link
        return [http.post("/v1/orders/o-test/grants", headers=auth,
                          json=grant_body(f"abba{n:02x}{index:02x}", index)).status_code
                for index in range(3)]

    with ExitStack() as stack:
        links = _clients(stack, setup, server)[:QUEUE]  # as many at once as admitted
        with ThreadPoolExecutor(QUEUE) as pool:
            codes = list(pool.map(three_grants, links, range(QUEUE)))
    assert codes == [[200] * 3] * QUEUE
    on_loop = server.context.engine.dialect.name == "postgresql"
    assert _lane(server).on_loop is on_loop
    loop_thread = f"site-{server.port}"  # run_in_thread's thread runs the event loop
    if on_loop:
        assert set(threads) == {loop_thread}
        assert most == 1
    else:
        assert loop_thread not in threads


def test_grants_waiting_for_their_turn_are_bounded_and_the_next_is_refused_at_once(
    served_on_postgresql: tuple[SiteSetup, SiteServer],
) -> None:
    setup, server = served_on_postgresql
    lane = _lane(server)
    assert lane.on_loop
    with ExitStack() as stack:
        links = _clients(stack, setup, server)
        # Learn the server's loop from a grant run on it, then hold the lane's turn there.
        loops: list[asyncio.AbstractEventLoop] = []
        real_issue = stations.issue_grant

        def noting(*args: Any, **kwargs: Any) -> Any:
            loops.append(asyncio.get_running_loop())
            return real_issue(*args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stations, "issue_grant", noting)
            first = links[0][0].post("/v1/orders/o-test/grants", headers=links[0][1],
                                     json=grant_body("beef0000", 0))
        assert first.status_code == 200
        release = threading.Event()

        async def hold() -> None:
            async with lane.turn():
                await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)

        held = asyncio.run_coroutine_threadsafe(hold(), loops[0])
        with ThreadPoolExecutor(QUEUE) as pool:
            queued = [pool.submit(links[n][0].post, "/v1/orders/o-test/grants",
                                  headers=links[n][1], json=grant_body(f"beef{n + 1:04x}", 1))
                      for n in range(QUEUE)]
            try:
                for _ in range(300):
                    if lane.waiting == QUEUE:
                        break
                    threading.Event().wait(0.05)
                assert lane.waiting == QUEUE
                busy = links[QUEUE][0].post("/v1/orders/o-test/grants", timeout=5,
                                            headers=links[QUEUE][1],
                                            json=grant_body("beefffff", 0))
                assert busy.status_code == 503
                assert busy.json()["code"] == "site_unavailable"
                assert busy.headers["retry-after"] == "1"
            finally:
                release.set()
            held.result(timeout=30)
            assert [answer.result().status_code for answer in queued] == [200] * QUEUE


def test_a_grant_waiting_on_a_lock_held_elsewhere_gives_up_and_its_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The site's sessions wait a bounded time for a lock: a grant on the loop never stalls
    # the process for longer (here 1 s instead of 10 s).
    monkeypatch.setattr(engine, "POSTGRES_LOCK_TIMEOUT_MS", 1000)
    with _serving("postgresql", tmp_path) as (setup, server), \
            client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
        auth = sign_in(http)
        body = grant_body("feed0001", 0)
        url = server.context.engine.url.set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False)) as holder:
            holder.execute("SELECT 1 FROM orders WHERE order_id = 'o-test' FOR UPDATE")
            started = time.monotonic()
            stalled = http.post("/v1/orders/o-test/grants", json=body, headers=auth)
            waited = time.monotonic() - started
            assert stalled.status_code == 503, stalled.text
            assert stalled.json()["code"] == "site_unavailable"
            assert 0.9 < waited < 10
            # Meanwhile the process serves again: the health check does not wait for the lock.
            assert http.get("/v1/health").status_code == 200
        retried = http.post("/v1/orders/o-test/grants", json=body, headers=auth)
        assert retried.status_code == 200, retried.text
