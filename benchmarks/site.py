"""Grant throughput and latency: 32 stations over mutual TLS on loopback, SQLite vs PostgreSQL,
site keys in files vs on a SoftHSM2 PKCS#11 token.

Run: python benchmarks/site.py [--grants-per-station N] [--workers W] [--client-processes P]
     [--skip-postgresql] [--keys files|pkcs11|both] [--in-process] [--worker-sweep 1,2,4]
     [--all]   (issue #16's table: in-process, SQLite, PostgreSQL at 1/2/4 workers)
Prints grants/s, p50/p99 latency, site CPU per grant and duplicate counts per engine and key
provider, and the ratios between them (``--keys pkcs11`` runs file keys too, as the peer).
The site runs in its own process(es); the stations run as threads spread over P client
processes, so client-side Python does not share one interpreter lock with 32 stations.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import secrets
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import httpx
import psutil
import psycopg
from psycopg import sql
from site_inprocess import InProcessResult, run_in_process
from site_process import cpu_s, free_port, serving
from sqlalchemy import func, select

from provisioner.crypto.bundle import open_bundle
from provisioner.crypto.secret import Secret
from provisioner.hsm.pin import PIN_ENV
from provisioner.site import admin, catalogue
from provisioner.site.confirmation import confirm_enrolment
from provisioner.site.context import open_site
from provisioner.site.db.models import Device, Grant
from provisioner.site.keyprovider.config import TokenConfig
from provisioner.site.sitedir import SiteDir
from provisioner.station.site_client import RETRY_BACKOFF_S
from provisioner.wire import EnrolmentConfirmation

REPO = Path(__file__).resolve().parents[1]
PROFILE = "stm32f103c8"
STATIONS = 32
PIN = "4711-2342"
TOKEN_PIN = "bench-0000"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class Result:
    engine: str
    keys: str
    grants: int
    refused: int
    seconds: float
    p50_ms: float
    p99_ms: float
    duplicates: int
    cpu_s: float
    busy: int
    clients_cpu_s: float  # the 32 stations' processes (httpx, TLS)
    database_cpu_s: float  # the PostgreSQL server's processes (0 for SQLite: in the site)

    @property
    def cpu_ms_per_grant(self) -> float:
        return self.cpu_s * 1000 / max(self.grants, 1)

    @property
    def machine_ms_per_grant(self) -> float:
        """CPU of site, stations and database server per grant: what bounds the rate here."""
        total = self.cpu_s + self.clients_cpu_s + self.database_cpu_s
        return total * 1000 / max(self.grants, 1)

    @property
    def rate(self) -> float:
        return self.grants / self.seconds


@dataclass(frozen=True)
class Identity:
    """One station's client certificate and key files, and the site CA to trust."""

    cert: Path
    key: Path
    ca: Path

    def context(self) -> ssl.SSLContext:
        """Build the station's mutual-TLS client context."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


@contextmanager
def _softhsm_token(work: Path) -> Iterator[TokenConfig]:
    """A SoftHSM2 token of this run's own (SOFTHSM2_CONF in a temp dir), PIN in the env."""
    tokens = work / "tokens"
    tokens.mkdir()
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n", encoding="utf-8")
    saved = {name: os.environ.get(name) for name in ("SOFTHSM2_CONF", PIN_ENV)}
    os.environ["SOFTHSM2_CONF"] = str(conf)
    os.environ[PIN_ENV] = TOKEN_PIN
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench",
                    "--pin", TOKEN_PIN, "--so-pin", "bench-so-0000"], check=True,
                   capture_output=True)
    try:
        yield TokenConfig(module=SOFTHSM_MODULE, token_label="bench")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _setup(root: Path, db_url: str | None, quantity: int,
           token: TokenConfig | None) -> list[Identity]:
    admin.init_site(root, site_name="bench", db_url=db_url, token=token,
                    pin=Secret(TOKEN_PIN.encode()) if token else None)
    ctx = open_site(root)
    identities = []
    try:
        admin.add_operator(ctx, "op", PIN)
        for n in range(STATIONS):
            enrolment = admin.add_station(ctx, root, f"ST-{n}", "https://127.0.0.1",
                                          scrypt_n=2**10)
            bundle = open_bundle(enrolment.bundle_path.read_bytes(), enrolment.passphrase)
            cert, key = root / f"ST-{n}.pem", root / f"ST-{n}.key"
            cert.write_bytes(bundle.client_cert_pem)
            key.write_bytes(bytes(bundle.client_key_pem.reveal()))
            identities.append(Identity(cert, key, SiteDir(root).ca_cert))
            confirm_enrolment(ctx, f"ST-{n}", EnrolmentConfirmation(request_id=f"enrol-ST-{n}"))
        catalogue.add_firmware(ctx, REPO / "fixtures" / PROFILE / "bootloader.hex",
                               kind=catalogue.FirmwareKind.bootloader_template,
                               product="bench", version="1", profile=PROFILE)
        catalogue.create_order(ctx, product="bench", profile=PROFILE, quantity=quantity,
                               bootloader="1", order_id="o-bench")
    finally:
        ctx.close()
    return identities


def _station(url: str, identity: Identity, count: int, barrier: Barrier
             ) -> tuple[list[float], list[float]]:
    """Grant ``count`` chips; return the latencies (negative: refused) and busy answers'."""
    latencies: list[float] = []
    busy: list[float] = []
    with httpx.Client(base_url=url, verify=identity.context(), timeout=30) as http:
        token = http.post("/v1/session", json={"operator_id": "op", "pin": PIN}).json()
        auth = {"Authorization": f"Bearer {token['session_token']}"}
        barrier.wait()
        for index in range(count):
            body = {"request_id": f"r-{secrets.token_hex(8)}", "chip_uid": secrets.token_hex(12),
                    "drbg_index": index}
            for attempt in itertools.count(1):
                start = time.perf_counter()
                answer = http.post("/v1/orders/o-bench/grants", json=body, headers=auth)
                elapsed = time.perf_counter() - start
                if answer.status_code != 503:
                    break
                # Site busy: ask again with the same body after the station's back-off; the
                # latency counted is the accepted attempt's (busy answers are counted apart).
                busy.append(elapsed)
                time.sleep(RETRY_BACKOFF_S * attempt)
            # A refusal is recorded as a negative latency (counted, kept out of the quantiles).
            latencies.append(elapsed if answer.status_code == 200 else -elapsed)
    return latencies, busy


def _client(url: str, identities: list[Identity], count: int, barrier: Barrier,
            results: multiprocessing.Queue[tuple[list[float], int]], finished: Event) -> None:
    """One client process: a thread per station; puts its latencies and busy count on
    ``results``, then stays until ``finished`` (the parent reads its CPU time meanwhile)."""
    with ThreadPoolExecutor(len(identities)) as pool:
        futures = [pool.submit(_station, url, i, count, barrier) for i in identities]
        done = [future.result() for future in futures]
        results.put(([latency for latencies, _ in done for latency in latencies],
                     sum(len(busy) for _, busy in done)))
    finished.wait(60)


def _database_cpu_s() -> float:
    """User + system CPU seconds of the local PostgreSQL server's processes (0 if none)."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def run(engine: str, db_url: str | None, per_station: int, workers: int,
        processes: int, keys: str) -> Result:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        token = None
        if keys == "pkcs11":
            (Path(tmp) / "hsm").mkdir()
            token = stack.enter_context(_softhsm_token(Path(tmp) / "hsm"))
        root = Path(tmp) / "site"
        identities = _setup(root, db_url, STATIONS * per_station, token)
        port = free_port()
        with serving(root, ["--port", str(port), "--workers", str(workers)], port,
                     start_timeout_s=30) as (url, server):
            spawn = multiprocessing.get_context("spawn")
            barrier = spawn.Barrier(STATIONS + 1)
            queue: multiprocessing.Queue[tuple[list[float], int]] = spawn.Queue()
            finished = spawn.Event()
            clients = [
                spawn.Process(target=_client, args=(
                    url, identities[n::processes], per_station, barrier, queue, finished))
                for n in range(processes)
            ]
            for client in clients:
                client.start()
            watched = [psutil.Process(client.pid) for client in clients]
            barrier.wait(timeout=120)
            start = time.perf_counter()
            cpu_start, clients_start = cpu_s(server), sum(map(cpu_s, watched))
            database_start = _database_cpu_s()
            reports = [queue.get(timeout=600) for _ in clients]
            answers = [latency for latencies, _ in reports for latency in latencies]
            busy = sum(count for _, count in reports)
            seconds = time.perf_counter() - start
            cpu, clients_cpu = cpu_s(server) - cpu_start, sum(map(cpu_s, watched)) - clients_start
            database_cpu = _database_cpu_s() - database_start
            finished.set()
            for client in clients:
                client.join(timeout=30)
        ctx = open_site(root)
        try:
            with ctx.factory() as session:
                devices = session.scalar(select(func.count()).select_from(Device)) or 0
                chips = session.scalar(select(func.count(func.distinct(Device.chip_uid)))) or 0
                grants = session.scalar(select(func.count()).select_from(Grant)) or 0
        finally:
            ctx.close()
        latencies = [latency for latency in answers if latency >= 0]
        cuts = statistics.quantiles(latencies, n=100)
        return Result(engine, keys, grants, len(answers) - len(latencies), seconds,
                      cuts[49] * 1000, cuts[98] * 1000,
                      duplicates=(devices - chips) + (grants - devices), cpu_s=cpu, busy=busy,
                      clients_cpu_s=clients_cpu,
                      database_cpu_s=database_cpu if engine == "postgresql" else 0.0)


def run_local(engine: str, db_url: str | None, per_station: int) -> InProcessResult:
    """Set the bench site up and time ``issue_grant``/``complete_grant`` in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "site"
        _setup(root, db_url, STATIONS * per_station, None)
        return run_in_process(engine, root, [f"ST-{n}" for n in range(STATIONS)], per_station,
                              "op", PIN)


def _print(r: Result, label: str = "") -> None:
    print(f"{r.engine:<11} {r.keys:<7}{label} {r.rate:8.1f} grants/s  p50 {r.p50_ms:6.1f} ms  "
          f"p99 {r.p99_ms:6.1f} ms  site CPU {r.cpu_ms_per_grant:5.2f} ms/grant  "
          f"granted {r.grants}  refused {r.refused}  busy {r.busy}  "
          f"duplicates {r.duplicates}")
    per = 1000 / max(r.grants, 1)
    cpus = os.cpu_count() or 1
    print(f"{'':<11} {'':<7}{label} CPU per grant: stations {r.clients_cpu_s * per:5.2f} ms, "
          f"database server {r.database_cpu_s * per:5.2f} ms, all {r.machine_ms_per_grant:5.2f}"
          f" ms -> at most {cpus * 1000 / r.machine_ms_per_grant:5.0f} grants/s on {cpus} CPUs")


def _sweep(workers: list[int], per_station: int, processes: int) -> None:
    """One PostgreSQL run per worker count; print each and its speed-up over the first."""
    results = []
    for count in workers:
        with _postgres() as url:
            results.append(run("postgresql", url, per_station, count, processes, "files"))
        _print(results[-1], f" workers {count}")
    for count, r in zip(workers[1:], results[1:], strict=True):
        print(f"postgresql speed-up {workers[0]} -> {count} workers: "
              f"{r.rate / results[0].rate:.2f}x")


def _print_local(r: InProcessResult) -> None:
    print(f"{r.engine:<11} in-process  issue_grant CPU {r.issue_cpu_ms:5.2f} ms  "
          f"complete_grant CPU {r.complete_cpu_ms:5.2f} ms  order lock held: grant "
          f"{r.lock_held_ms:5.2f} ms, completion {r.complete_lock_held_ms:5.2f} ms  "
          f"(medians of {r.grants})")


@contextmanager
def _postgres() -> Iterator[str]:
    admin_dsn = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"site_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants-per-station", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="PostgreSQL site workers")
    parser.add_argument("--sqlite-workers", type=int, default=1,
                        help="SQLite site workers (one writer at a time: 1 avoids lock polling)")
    parser.add_argument("--client-processes", type=int, default=4,
                        help="processes the 32 station threads are spread over")
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--keys", choices=["files", "pkcs11", "both"], default="files",
                        help="site key provider; pkcs11 also runs files as the peer")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per configuration, alternating providers; medians shown")
    parser.add_argument("--in-process", action="store_true",
                        help="call the grant functions in this process (no HTTP): CPU per "
                             "grant and lock-held time, medians")
    parser.add_argument("--worker-sweep", metavar="N,N,…",
                        help="PostgreSQL only, one run per worker count (e.g. 1,2,4): "
                             "grants/s and the speed-up over the first")
    parser.add_argument("--all", action="store_true",
                        help="the whole table: in-process cost and lock-held time on both "
                             "engines, SQLite over HTTP, PostgreSQL over HTTP at 1, 2 and 4 "
                             "workers with the speed-ups")
    args = parser.parse_args()
    if args.all:
        per, procs = args.grants_per_station, args.client_processes
        _print_local(run_local("sqlite", None, per))
        with _postgres() as url:
            _print_local(run_local("postgresql", url, per))
        _print(run("sqlite", None, per, args.sqlite_workers, procs, "files"))
        _sweep([1, 2, 4], per, procs)
        return
    if args.worker_sweep:
        _sweep([int(n) for n in args.worker_sweep.split(",")], args.grants_per_station,
               args.client_processes)
        return
    if args.in_process:
        if not args.skip_sqlite:
            _print_local(run_local("sqlite", None, args.grants_per_station))
        if not args.skip_postgresql:
            with _postgres() as url:
                _print_local(run_local("postgresql", url, args.grants_per_station))
        return
    per, procs = args.grants_per_station, args.client_processes
    providers = ["files"] if args.keys == "files" else ["files", "pkcs11"]
    runs: dict[tuple[str, str], list[Result]] = {}
    for _ in range(args.repeat):
        # Alternate providers so a change in machine load hits both alike.
        for keys in providers:
            if not args.skip_sqlite:
                runs.setdefault(("sqlite", keys), []).append(
                    run("sqlite", None, per, args.sqlite_workers, procs, keys))
            if not args.skip_postgresql:
                with _postgres() as url:
                    runs.setdefault(("postgresql", keys), []).append(
                        run("postgresql", url, per, args.workers, procs, keys))
    results = [sorted(group, key=lambda r: r.rate)[(len(group) - 1) // 2]
               for group in runs.values()]
    print(f"{STATIONS} stations in {procs} client processes, {per} grants each; workers: "
          f"sqlite {args.sqlite_workers}, postgresql {args.workers}; median of {args.repeat}")
    for r in results:
        _print(r)
    by = {(r.engine, r.keys): r for r in results}
    for engine in ("sqlite", "postgresql"):
        files, token = by.get((engine, "files")), by.get((engine, "pkcs11"))
        if files and token:
            print(f"{engine}: pkcs11/files throughput {token.rate / files.rate:.2f}, "
                  f"CPU per grant {token.cpu_ms_per_grant / files.cpu_ms_per_grant:.2f} "
                  f"(token cost {100 * (1 - token.rate / files.rate):.1f} % of throughput)")
    if ("sqlite", "files") in by and ("postgresql", "files") in by:
        print(f"postgresql/sqlite throughput ratio (files): "
              f"{by['postgresql', 'files'].rate / by['sqlite', 'files'].rate:.2f}")


if __name__ == "__main__":
    main()
