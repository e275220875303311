"""What runs under the order's row lock: only the counter, the audit head and the entry.

Every statement a grant or a completion sends from the one that takes the order's lock to the
commit is recorded (engine hook) on SQLite and PostgreSQL, and must touch only the order's
counters and the audit tables: derivation, sealing and the device and grant rows come before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from site_fixtures import DATABASES, OPERATOR, PIN, fingerprint_of, opened_site
from sqlalchemy import event

from provisioner.site.context import SiteContext
from provisioner.site.db.models import Device
from provisioner.site.grants import complete_grant, issue_grant
from provisioner.site.sessions import sign_in
from provisioner.wire import AttemptResult, CompleteRequest, GrantRequest, SessionRequest

_ORDER_LOCK = re.compile(r"^(UPDATE orders SET|WITH (reserved|settled) AS)")
_SERIALISED = re.compile(r"\b(orders|audit_head|audit_entries|audit_checkpoints)\b")
_ELSEWHERE = re.compile(r"\b(devices|grants|stations|firmware|sessions|order_stations)\b")


@pytest.fixture(params=sorted(DATABASES))
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SiteContext]:
    with opened_site(request.param, tmp_path) as site:
        yield site


@contextmanager
def _after_order_lock(ctx: SiteContext) -> Iterator[list[str]]:
    """Yield the statements sent from the order lock on (cleared at every new transaction)."""
    seen: list[str] = []
    locked = False

    def begin(_conn: Any) -> None:
        nonlocal locked
        locked = False
        seen.clear()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal locked
        text = " ".join(statement.split())
        locked = locked or _ORDER_LOCK.match(text) is not None
        if locked:
            seen.append(text)

    event.listen(ctx.engine, "begin", begin)
    event.listen(ctx.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(ctx.engine, "before_cursor_execute", before)
        event.remove(ctx.engine, "begin", begin)


def _check(statements: list[str]) -> None:
    assert statements, "the order lock was never taken"
    assert _ORDER_LOCK.match(statements[0])
    for statement in statements:
        assert _SERIALISED.search(statement), statement
        assert not _ELSEWHERE.search(statement), statement


def test_only_counters_and_audit_run_under_the_order_lock(ctx: SiteContext) -> None:
    token = sign_in(ctx, "ST-1", SessionRequest(operator_id=OPERATOR, pin=PIN)).session_token
    fingerprint = fingerprint_of(ctx, "ST-1")
    with _after_order_lock(ctx) as statements:
        grant = issue_grant(ctx, "ST-1", token, "o-test", GrantRequest(
            request_id="r-critical", chip_uid="ab00cd01", drbg_index=0),
            fingerprint=fingerprint)
        _check(statements)
    with ctx.factory() as session:
        device = session.get(Device, grant.device_id)
        assert device is not None
        digest = device.image_sha256
    with _after_order_lock(ctx) as statements:
        done = complete_grant(ctx, "ST-1", token, grant.grant_id, CompleteRequest(
            request_id="c-critical", result=AttemptResult.success, image_sha256=digest,
            verified=True, protected=True), fingerprint=fingerprint)
        _check(statements)
    assert done.status == "programmed"
