"""Audit throughput: chain verification (anchored and every signature) against bare Ed25519,
and `site report` over a million stored entries on SQLite and PostgreSQL against a plain
count query (sqlite3 / psql) as the floor.

Run: python benchmarks/audit.py [--entries N] [--report-entries M] [--skip-postgresql]
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import text

from provisioner.audit.chain import AuditEntry, AuditEvent, build_entry, verify_chain
from provisioner.audit.checkpoint import CHECKPOINT_INTERVAL, sign_checkpoint, verify_anchored
from provisioner.audit.report import Filter
from provisioner.crypto.signing import SigningKey
from provisioner.site import admin
from provisioner.site.context import open_site
from provisioner.site.production import site_report

ROUNDS = 3
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _chain(signer: SigningKey, count: int) -> list[AuditEntry]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[AuditEntry] = []
    for i in range(count):
        out.append(build_entry(prev=out[-1] if out else None, time=start + timedelta(seconds=i),
                               actor="station:ST-1", event=AuditEvent.device_programmed,
                               data={"order_id": "O-1", "station_id": "ST-1", "device_id": i,
                                     "operator_id": "alice", "drbg_index": i,
                                     "chip_uid": f"{i:024x}", "image_sha256": "ab" * 32,
                                     "verified": True, "protection_level": 1,
                                     "timings_ms": {"erase": 120, "program": 900}},
                               signer=signer))
    return out


def _median_s(action: Callable[[], object], rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def verify_rates(count: int) -> None:
    """Print verify rates: anchored (the default), every signature, bare Ed25519."""
    signer = SigningKey.generate()
    key = signer.verify_key
    chain = _chain(signer, count)
    anchors = [sign_checkpoint(e.seq, e.hash, e.time, signer) for e in chain
               if e.seq % CHECKPOINT_INTERVAL == 0]
    head = sign_checkpoint(chain[-1].seq, chain[-1].hash, chain[-1].time, signer)
    anchored_s = _median_s(lambda: verify_anchored(chain, key, anchors=anchors, head=head))
    every_s = _median_s(lambda: verify_chain(chain, key), rounds=1)
    digest, signature = bytes(32), signer.sign(bytes(32))
    bare_s = _median_s(lambda: [key.verify(digest, signature) for _ in range(2000)]) / 2000
    print(f"verify {count} entries (checkpoint every {CHECKPOINT_INTERVAL}), median of {ROUNDS}")
    print(f"  anchored (default)  : {count / anchored_s:10.0f} entries/s")
    print(f"  every signature     : {count / every_s:10.0f} entries/s")
    print(f"  bare Ed25519 verify : {1 / bare_s:10.0f} verifies/s (the per-entry ceiling)")


def _rows(count: int, signer: SigningKey) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Audit rows of a production (grant, programmed; a refusal every 10th board)."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    device = 0
    while len(rows) < count:
        device += 1
        base = {"order_id": "o-bench", "station_id": f"ST-{device % 3}", "device_id": device,
                "operator_id": f"op-{device % 2}", "chip_uid": f"{device:024x}"}
        events = [(AuditEvent.grant_issued, base),
                  (AuditEvent.device_programmed, {**base, "status": "programmed",
                                                  "image_sha256": "ab" * 32, "verified": True,
                                                  "protection_level": 1})]
        if device % 10 == 0:
            events.append((AuditEvent.grant_refused, {**base, "code": "quota_exhausted"}))
        for event, data in events:
            seq = len(rows) + 1
            stamp = (start + timedelta(seconds=seq)).isoformat(timespec="microseconds")
            rows.append({"seq": seq, "time": stamp.replace("+00:00", "Z"), "actor": "bench",
                         "event": str(event), "data": json.dumps(data, sort_keys=True,
                                                                 separators=(",", ":")),
                         "prev_hash": "0" * 64, "hash": secrets.token_hex(32),
                         "key_id": signer.key_id, "signature": "00" * 64})
    rows = rows[:count]
    last = rows[-1]
    head = sign_checkpoint(int(str(last["seq"])), str(last["hash"]), str(last["time"]), signer)
    return rows, {"devices": device, "head": head}


@contextmanager
def _postgres() -> Iterator[str]:
    name = f"audit_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _fill(site_dir: Path, count: int) -> int:
    """Store ``count`` audit rows and a consistent order/device table; return devices made."""
    ctx = open_site(site_dir)
    try:
        rows, extra = _rows(count, ctx.signer)
        devices = int(str(extra["devices"]))
        programmed = sum(1 for r in rows if r["event"] == AuditEvent.device_programmed)
        granted = sum(1 for r in rows if r["event"] == AuditEvent.grant_issued)
        head = extra["head"]
        now = datetime.now(UTC)
        with ctx.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_entries"))
            conn.execute(text(
                "INSERT INTO audit_entries (seq, time, actor, event, data, prev_hash, hash, "
                "key_id, signature) VALUES (:seq, :time, :actor, :event, :data, :prev_hash, "
                ":hash, :key_id, :signature)"), rows)
            conn.execute(text("UPDATE audit_head SET seq=:seq, hash=:hash, time=:time, "
                              "key_id=:key_id, signature=:signature"), head.to_dict())  # type: ignore[attr-defined]
            conn.execute(text(
                "INSERT INTO firmware (firmware_id, kind, product, version, profile, sha256, "
                "signature, key_id, size_bytes, wrapped_bytes, created_at) VALUES ('fw', "
                "'bootloader-template', 'p', '1', NULL, '', '', '', 0, :b, :now)"),
                {"b": b"", "now": now})
            conn.execute(text(
                "INSERT INTO stations (station_id, cert_fingerprint, wrapped_seed, "
                "wrapped_transport_key, next_index, status, created_at) VALUES ('ST-0', 'f0', "
                ":b, :b, 0, 'active', :now)"), {"b": b"", "now": now})
            conn.execute(text(
                "INSERT INTO orders (order_id, product, profile, profile_sha256, bootloader_id, "
                "application_id, authorised_quantity, produced, reserved, status, created_at) "
                "VALUES ('o-bench', 'p', 'stm32f103c8', '', 'fw', NULL, :q, :p, :r, 'open', "
                ":now)"),
                         {"q": devices * 2, "p": programmed, "r": granted - programmed,
                          "now": now})
            conn.execute(text(
                "INSERT INTO devices (device_id, chip_uid, order_id, station_id, drbg_index, "
                "wrapped_key, image_sha256, status, attempts, created_at, updated_at) VALUES "
                "(:d, :c, 'o-bench', 'ST-0', :d, :b, '', 'programmed', 1, :now, :now)"),
                [{"d": d, "c": f"{d:024x}", "b": b"", "now": now}
                 for d in {json.loads(str(r["data"]))["device_id"] for r in rows
                           if r["event"] == AuditEvent.device_programmed}])
        return devices
    finally:
        ctx.close()


def _floor(engine: str, site_dir: Path, url: str | None) -> float:
    """Seconds for a plain count query through the engine's own command-line client."""
    if engine == "sqlite":
        command = ["sqlite3", str(site_dir / "site.db"), "SELECT count(*) FROM audit_entries;"]
    else:
        assert url is not None
        command = ["psql", "-X", "-q", "-t", url.replace("+psycopg", ""), "-c",
                   "SELECT count(*) FROM audit_entries;"]
    return _median_s(lambda: subprocess.run(command, check=True, capture_output=True))


def report_rate(engine: str, count: int) -> None:
    """Time `site report` over ``count`` stored entries against the count-query floor."""
    with tempfile.TemporaryDirectory() as work, (
            _postgres() if engine == "postgresql" else nullcontext(None)) as url:
        site_dir = Path(work) / "site"
        admin.init_site(site_dir, site_name="bench", db_url=url)
        began = time.perf_counter()
        _fill(site_dir, count)
        fill_s = time.perf_counter() - began
        ctx = open_site(site_dir)
        try:
            cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
            wall = []
            for _ in range(2):
                began = time.perf_counter()
                built = site_report(ctx, Filter())
                wall.append(time.perf_counter() - began)
            cpu = (resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0) / 2
        finally:
            ctx.close()
        assert built.report.entry_count == count, built.report.entry_count
        alarms = len(built.report.alarms)
        floor = _floor(engine, site_dir, url)
        report_s = statistics.median(wall)
        print(f"site report, {engine:10}: {count} entries in {report_s:6.2f} s "
              f"({count / report_s:8.0f} entries/s, {cpu:5.2f} s CPU), count query "
              f"{floor:5.3f} s ({report_s / floor:5.0f}x the floor); fill {fill_s:.0f} s; "
              f"{alarms} alarms")


def main() -> None:
    """Print verify rates and site report times."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--report-entries", type=int, default=1_000_000)
    parser.add_argument("--skip-postgresql", action="store_true")
    args = parser.parse_args()
    verify_rates(args.entries)
    report_rate("sqlite", args.report_entries)
    if not args.skip_postgresql:
        report_rate("postgresql", args.report_entries)


if __name__ == "__main__":
    main()
