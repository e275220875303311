"""Update packages served per second: 256 KiB image, 32 concurrent requesters over TLS.

Run: python benchmarks/updates.py [--per-requester N] [--workers W] [--client-processes P]
     [--skip-postgresql] [--json-answers]
Prints packages/s, p50/p99 latency and the site's CPU milliseconds per package for SQLite and
PostgreSQL. The site (`site serve`, update listener) runs in its own process(es); requesters
are threads over P client processes. Every request is for a different device (one delivery
per device and release), signed with that device's key as the device would. Requesters take
the package as the raw answer body, as the relay does (``--json-answers``: JSON with base64).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import ssl
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from site_process import cpu_s, free_port, serving

from provisioner.crypto.secret import Secret
from provisioner.site import admin, catalogue
from provisioner.site.context import device_key_aad, open_site
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Device
from provisioner.site.sitedir import SiteDir
from provisioner.site.updates import releases
from provisioner.update import derive
from provisioner.update.codec import UpdateRequest
from provisioner.wire import PACKAGE_CONTENT_TYPE

REPO = Path(__file__).resolve().parents[1]
PROFILE = "stm32f103c8"
REQUESTERS = 32
IMAGE_BYTES = 256 * 1024


@dataclass(frozen=True)
class Result:
    engine: str
    packages: int
    refused: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_package: float

    @property
    def rate(self) -> float:
        return self.packages / self.seconds


def _setup(root: Path, db_url: str | None, devices: int) -> list[tuple[int, bytes]]:
    """A site with one release of 256 KiB and ``devices`` programmed devices (keys known)."""
    admin.init_site(root, site_name="bench", db_url=db_url)
    ctx = open_site(root)
    keys = []
    try:
        admin.add_station(ctx, root, "ST-0", "https://127.0.0.1", scrypt_n=2**10)
        catalogue.add_firmware(ctx, REPO / "fixtures" / PROFILE / "bootloader.hex",
                               kind=catalogue.FirmwareKind.bootloader_template,
                               product="bench", version="1", profile=PROFILE)
        catalogue.create_order(ctx, product="bench", profile=PROFILE, quantity=devices,
                               bootloader="1", order_id="o-bench")
        now = datetime.now(UTC)
        with transaction(ctx.factory) as session:
            # Benchmark fixture: rows as the grant path leaves them for programmed devices.
            for n in range(devices):
                device_id, key = 1000 + n, os.urandom(16)
                session.add(Device(
                    device_id=device_id, chip_uid=secrets.token_hex(12), order_id="o-bench",
                    station_id="ST-0", drbg_index=n, status="programmed", image_sha256="0" * 64,
                    wrapped_key=ctx.keys.wrap(key, device_key_aad(device_id, n)),
                    attempts=1, created_at=now, updated_at=now))
                keys.append((device_id, key))
        image = root / "release.bin"
        image.write_bytes(os.urandom(IMAGE_BYTES))
        releases.add_release(ctx, image, product="bench", version="1.1.0")
    finally:
        ctx.close()
    return keys


def _requester(url: str, ca: str, devices: list[tuple[int, bytes]], barrier: Barrier,
               accept: str) -> list[float]:
    context = ssl.create_default_context(cafile=ca)
    latencies: list[float] = []
    bodies = []
    for device_id, key in devices:
        request = UpdateRequest(device_id, 0, 0, os.urandom(16))
        mac = derive.mac(derive.request_mac_key(Secret(key), device_id), request.to_bytes())
        bodies.append({"device_id": device_id, "current_version": 0, "security_counter": 0,
                       "nonce": request.nonce.hex(), "mac": mac.hex()})
    with httpx.Client(base_url=url, verify=context, timeout=60) as http:
        http.get("/v1/health")
        barrier.wait()
        for body in bodies:
            start = time.perf_counter()
            answer = http.post("/v1/updates", json=body, headers={"accept": accept})
            ok = answer.status_code == 200 and len(answer.content) > IMAGE_BYTES
            elapsed = time.perf_counter() - start
            latencies.append(elapsed if ok else -elapsed)
    return latencies


def _client(url: str, ca: str, shares: list[list[tuple[int, bytes]]], barrier: Barrier,
            accept: str, results: multiprocessing.Queue[list[float]]) -> None:
    with ThreadPoolExecutor(len(shares)) as pool:
        futures = [pool.submit(_requester, url, ca, share, barrier, accept) for share in shares]
        results.put([latency for future in futures for latency in future.result()])


def run(engine: str, db_url: str | None, per_requester: int, workers: int,
        processes: int, accept: str) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        keys = _setup(root, db_url, REQUESTERS * per_requester)
        shares = [keys[n::REQUESTERS] for n in range(REQUESTERS)]
        port, update_port = free_port(), free_port()
        serve_args = ["--port", str(port), "--update-port", str(update_port),
                      "--update-rate", "100000", "--workers", str(workers)]
        with serving(root, serve_args, update_port) as (url, server):
            spawn = multiprocessing.get_context("spawn")
            barrier = spawn.Barrier(REQUESTERS + 1)
            queue: multiprocessing.Queue[list[float]] = spawn.Queue()
            ca = str(SiteDir(root).ca_cert)
            clients = [spawn.Process(target=_client,
                                     args=(url, ca, shares[n::processes], barrier, accept,
                                           queue))
                       for n in range(processes)]
            for client in clients:
                client.start()
            barrier.wait(timeout=300)
            cpu_before, start = cpu_s(server), time.perf_counter()
            answers = [latency for _ in clients for latency in queue.get(timeout=900)]
            seconds = time.perf_counter() - start
            cpu = cpu_s(server) - cpu_before
            for client in clients:
                client.join()
    served = sorted(a for a in answers if a >= 0)
    refused = len(answers) - len(served)
    quantiles = statistics.quantiles(served, n=100) if len(served) > 1 else [0.0] * 99
    return Result(engine, len(served), refused, seconds, quantiles[49] * 1000,
                  quantiles[98] * 1000, cpu * 1000 / max(1, len(served)))


@contextmanager
def _postgres() -> Iterator[str]:
    admin_dsn = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"bench_updates_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                               .format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-requester", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--json-answers", action="store_true",
                        help="take the package as JSON with base64 instead of the raw body")
    args = parser.parse_args()
    accept = "application/json" if args.json_answers else PACKAGE_CONTENT_TYPE
    results = [run("sqlite", None, args.per_requester, args.workers, args.client_processes,
                   accept)]
    if not args.skip_postgresql:
        with _postgres() as url:
            results.append(run("postgresql", url, args.per_requester, args.workers,
                               args.client_processes, accept))
    print(f"{IMAGE_BYTES // 1024} KiB image, {REQUESTERS} requesters over TLS, "
          f"{args.workers} site worker(s), {args.client_processes} client process(es), "
          f"answers {accept}")
    for r in results:
        print(f"{r.engine:<10} {r.rate:7.1f} packages/s  p50 {r.p50_ms:7.1f} ms  "
              f"p99 {r.p99_ms:7.1f} ms  site CPU {r.cpu_ms_per_package:5.2f} ms/package  "
              f"({r.packages} served, {r.refused} refused, {r.seconds:.1f} s)")
    print("target: >= 200 packages/s, <= 5 ms site CPU per package")


if __name__ == "__main__":
    main()
