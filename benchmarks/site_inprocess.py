"""In-process grant cost: CPU per grant of the functions the routes call, and lock-held time.

One thread calls ``issue_grant`` and ``complete_grant`` exactly as the station routes do (no
HTTP, TLS or FastAPI), so the CPU figure is the site's own cost per grant in this process
(the database server's CPU for PostgreSQL is not in it). The lock-held time runs from the
statement that takes the order's row lock (the counter UPDATE) to the return of the
committed transaction.
"""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from provisioner.site import admin
from provisioner.site.context import SiteContext, open_site
from provisioner.site.db.models import Device
from provisioner.site.grants import complete_grant, issue_grant
from provisioner.site.sessions import sign_in
from provisioner.wire import AttemptResult, CompleteRequest, GrantRequest, SessionRequest

# The statement that takes the order's row lock (SQLite, PostgreSQL): a grant's reserved
# count, a completion's counters.
_GRANT_LOCK = ("UPDATE orders SET reserved", "WITH reserved AS")
_COMPLETE_LOCK = ("UPDATE orders SET produced", "WITH settled AS")


@dataclass(frozen=True)
class InProcessResult:
    engine: str
    grants: int
    issue_cpu_ms: float
    complete_cpu_ms: float
    lock_held_ms: float
    complete_lock_held_ms: float


class _LockClock:
    """Notes when a transaction takes the order's row lock (engine statement hook)."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        self.prefixes = prefixes
        self.taken_at: float | None = None

    def before_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.taken_at is None and statement.lstrip().startswith(self.prefixes):
            self.taken_at = time.perf_counter()

    def held_ms(self) -> float:
        taken, self.taken_at = self.taken_at, None
        return float("nan") if taken is None else (time.perf_counter() - taken) * 1000


@contextmanager
def _hooked(engine: Engine, clock: _LockClock) -> Iterator[None]:
    event.listen(engine, "before_cursor_execute", clock.before_execute)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", clock.before_execute)


def _sign_in(ctx: SiteContext, station_id: str, operator: str, pin: str) -> str:
    return sign_in(ctx, station_id, SessionRequest(operator_id=operator, pin=pin)).session_token


def run_in_process(engine: str, root: Path, stations: list[str], per_station: int,
                   operator: str, pin: str) -> InProcessResult:
    """Issue and complete ``per_station`` grants per station in turn; return the medians."""
    ctx = open_site(root)
    try:
        tokens = {station: _sign_in(ctx, station, operator, pin) for station in stations}
        fingerprints = {info.station_id: info.cert_fingerprint
                        for info in admin.list_stations(ctx)}
        issue_cpu: list[float] = []
        complete_cpu: list[float] = []
        held: list[float] = []
        complete_held: list[float] = []
        grant_clock, complete_clock = _LockClock(_GRANT_LOCK), _LockClock(_COMPLETE_LOCK)
        for index in range(per_station):
            for station in stations:
                request = GrantRequest(request_id=f"r-{secrets.token_hex(8)}",
                                       chip_uid=secrets.token_hex(12), drbg_index=index)
                with _hooked(ctx.engine, grant_clock):
                    cpu = time.process_time()
                    grant = issue_grant(ctx, station, tokens[station], "o-bench", request,
                                        fingerprint=fingerprints[station])
                    issue_cpu.append(time.process_time() - cpu)
                    held.append(grant_clock.held_ms())
                done = CompleteRequest(request_id=f"c-{secrets.token_hex(8)}",
                                       result=AttemptResult.success,
                                       image_sha256=_expected_digest(ctx, grant.device_id),
                                       verified=True, protected=True, timings_ms={})
                with _hooked(ctx.engine, complete_clock):
                    cpu = time.process_time()
                    complete_grant(ctx, station, tokens[station], grant.grant_id, done,
                                   fingerprint=fingerprints[station])
                    complete_cpu.append(time.process_time() - cpu)
                    complete_held.append(complete_clock.held_ms())
    finally:
        ctx.close()
    return InProcessResult(
        engine, len(issue_cpu), statistics.median(issue_cpu) * 1000,
        statistics.median(complete_cpu) * 1000, statistics.median(held),
        statistics.median(complete_held),
    )


def _expected_digest(ctx: SiteContext, device_id: int) -> str:
    with ctx.factory() as session:
        device = session.get(Device, device_id)
        assert device is not None
        return device.image_sha256
