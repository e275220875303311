"""4 site worker processes on one PostgreSQL, 64 station processes racing for a quota of 500:
as `site serve --workers 4`, and as two `site serve --workers 2` processes on their own ports
(the stations split between them)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path

import httpx
import pytest
from site_fixtures import (
    EnrolledStation,
    SiteSetup,
    build_site,
    free_port,
    grant_body,
    postgres_database,
    sign_in,
    tls_context,
    wait_until_serving,
)
from sqlalchemy import func, select

from provisioner.audit.chain import AuditEvent
from provisioner.site import admin
from provisioner.site.context import open_site
from provisioner.site.db.models import AuditRow, Device, Grant, Order

CLIENTS = 64
QUOTA = 500
WORKERS = 4
SHARED_CHIP = "cc00ffee"  # every station asks for it first: one device, the rest refused


def _start(root: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from provisioner.cli import main; main()", "site",
         "--site-dir", str(root), "serve", "--port", str(port), "--workers", str(workers)],
        stderr=subprocess.DEVNULL,
    )
    return process, f"https://127.0.0.1:{port}"


# Workers of each `site serve` process: one process of 4, or two processes of 2.
LAYOUTS = {"one-serve-4-workers": (WORKERS,), "two-serves-2-workers": (2, 2)}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[SiteSetup, list[str]]]:
    layout = LAYOUTS[request.param]
    assert sum(layout) == WORKERS
    with postgres_database() as db_url:
        root = tmp_path_factory.mktemp("site-workers")
        setup = build_site(root, db_url=db_url, stations=CLIENTS, quantity=QUOTA)
        started = [_start(root, workers) for workers in layout]
        try:
            for process, url in started:
                wait_until_serving(url, setup.ca_path, process)
            yield setup, [url for _, url in started]
        finally:
            for process, _ in started:
                process.terminate()
            for process, _ in started:
                process.wait(timeout=30)


def _post(http: httpx.Client, path: str, body: dict[str, object],
          auth: dict[str, str]) -> httpx.Response:
    """Post like a station: a busy site is asked again with the same request_id."""
    while True:
        answer = http.post(path, json=body, headers=auth)
        if answer.status_code != 503:
            return answer
        time.sleep(0.05)


def _station(url: str, ca_path: Path, station: EnrolledStation, order_id: str,
             barrier: Barrier, results: multiprocessing.Queue[list[tuple[str, int, str]]]
             ) -> None:
    """One station process: the shared chip first, then new chips until the quota ends."""
    answers: list[tuple[str, int, str]] = []
    path = f"/v1/orders/{order_id}/grants"
    with httpx.Client(base_url=url, verify=tls_context(ca_path, station), timeout=60) as http:
        auth = sign_in(http)
        barrier.wait(timeout=120)
        index, chip = 0, SHARED_CHIP
        for n in range(QUOTA + 1):
            answer = _post(http, path, grant_body(chip, index), auth)
            code = "granted" if answer.status_code == 200 else answer.json()["code"]
            answers.append((code, index, chip))
            if code == "quota_exhausted":
                break
            if code == "granted":
                index += 1
            chip = f"{int(station.station_id.rsplit('-', 1)[1]):04x}{n:06x}"
    results.put(answers)


@pytest.mark.slow
def test_64_station_processes_on_4_workers_grant_exactly_the_quota(
    served: tuple[SiteSetup, list[str]],
) -> None:
    setup, urls = served
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(CLIENTS)
    results: multiprocessing.Queue[list[tuple[str, int, str]]] = fork.Queue()
    processes = [fork.Process(target=_station, args=(urls[n % len(urls)], setup.ca_path,
                                                     station, setup.order_id, barrier, results))
                 for n, station in enumerate(setup.stations.values())]
    for process in processes:
        process.start()
    answers = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    codes = Counter(code for station in answers for code, _, _ in station)
    granted = [(index, chip) for station in answers for code, index, chip in station
               if code == "granted"]
    assert codes == Counter({"granted": QUOTA, "quota_exhausted": CLIENTS,
                             "duplicate_chip": CLIENTS - 1})
    assert sum(chip == SHARED_CHIP for _, chip in granted) == 1
    ctx = open_site(setup.root)
    try:
        with ctx.factory() as session:
            devices = session.execute(select(Device.chip_uid, Device.station_id,
                                             Device.drbg_index)).all()
            grants = session.execute(select(Grant.station_id, Grant.drbg_index)).all()
            order = session.get(Order, setup.order_id)
            issued = session.scalar(select(func.count()).select_from(AuditRow).where(
                AuditRow.event == AuditEvent.grant_issued))
        assert order is not None
        assert len(devices) == len({chip for chip, _, _ in devices}) == QUOTA
        assert len({(station, index) for _, station, index in devices}) == QUOTA
        assert len(grants) == len(set(grants)) == QUOTA  # no (station, index) granted twice
        assert (order.produced, order.reserved) == (0, QUOTA)
        assert issued == QUOTA
        assert admin.verify_audit(ctx) > QUOTA
    finally:
        ctx.close()
