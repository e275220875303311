"""16 processes ask for the same release for the same device at once on PostgreSQL: one delivery
(16 different requests: 15 clone alarms; the same request 16 times: 15 re-deliveries)."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from site_fixtures import postgres_database
from update_fixtures import app_image, update_world

from provisioner.crypto.secret import Secret
from provisioner.errors import Refused
from provisioner.site.context import open_site
from provisioner.site.updates.service import UpdateService
from provisioner.update import derive
from provisioner.update.codec import UpdateRequest
from provisioner.wire import UpdateRequestBody

RACERS = 16


def _race(site_dir: Path, db_url: str, body: dict[str, object], source: str,
          barrier: Barrier, results: Queue[str]) -> None:
    ctx = open_site(site_dir, db_url=db_url)
    try:
        service = UpdateService.open(ctx)
        request = UpdateRequestBody.model_validate(body)
        barrier.wait(timeout=60)
        try:
            results.put(f"delivered {service.request(request, source).delivery_id}")
        except Refused as exc:
            results.put(exc.code)
    finally:
        ctx.close()


def _body(key: Secret, device_id: int) -> dict[str, object]:
    request = UpdateRequest(device_id, 0, 0, os.urandom(16))
    mac = derive.mac(derive.request_mac_key(key, device_id), request.to_bytes())
    return UpdateRequestBody(device_id=device_id, current_version=0, security_counter=0,
                             nonce=request.nonce.hex(), mac=mac.hex()).model_dump()


def _run_racers(site_dir: Path, db_url: str, bodies: list[dict[str, object]]) -> list[str]:
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(len(bodies))
    queue: Queue[str] = spawn.Queue()
    racers = [spawn.Process(target=_race, args=(site_dir, db_url, body, f"10.0.0.{n}",
                                               barrier, queue))
              for n, body in enumerate(bodies)]
    for racer in racers:
        racer.start()
    results = [queue.get(timeout=120) for _ in racers]
    for racer in racers:
        racer.join(timeout=60)
    return results


@pytest.mark.slow
def test_sixteen_processes_one_delivery(tmp_path: Path) -> None:
    with postgres_database() as db_url, update_world(tmp_path, 2, db_url=db_url) as (w, chips):
        w.add_release("1.1.0", app_image("race 1.1.0"))
        device = w.device("VSWD0000")
        key = Secret(w.device_key(chips[0]))
        results = _run_racers(w.site.site_dir, db_url,
                              [_body(key, device.device_id) for _ in range(RACERS)])
        delivered = [r for r in results if r.startswith("delivered")]
        assert len(delivered) == 1, results
        assert sorted(set(results) - set(delivered)) == ["already_delivered"]
        assert w.deliveries() == 1
        assert len(w.audit("update_delivered")) == 1
        assert len(w.audit("alarm_clone")) == RACERS - 1
        # The very same request sent by 16 processes at once (a relay retrying while its
        # first try is still being served): one delivery, answered to all, no clone alarm.
        other = w.device("VSWD0001")
        same = _body(Secret(w.device_key(chips[1])), other.device_id)
        results = _run_racers(w.site.site_dir, db_url, [same] * RACERS)
        assert len(set(results)) == 1, results
        assert results[0].startswith("delivered")
        assert w.deliveries() == 2
        assert len(w.audit("update_delivered")) == 2
        assert len(w.audit("update_redelivered")) == RACERS - 1
        assert len(w.audit("alarm_clone")) == RACERS - 1
