"""The statements a grant and a completion send, on SQLite and PostgreSQL.

A station's next grant in a process that already holds its key stream reads nothing before
its transaction, and its first statement takes the station's and the chip's row locks with
the request's facts; a process that never saw the station reads it first (unlocked). On
PostgreSQL a grant is five statements and a completion four, and no connection in steady
use is pinged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from site_fixtures import DATABASES, OPERATOR, PIN, fingerprint_of, opened_site
from sqlalchemy import event

from provisioner.site.context import KeyStreams, SiteContext
from provisioner.site.db.models import Device
from provisioner.site.grants import complete_grant, issue_grant
from provisioner.site.sessions import sign_in
from provisioner.wire import AttemptResult, CompleteRequest, GrantRequest, SessionRequest


@pytest.fixture(params=sorted(DATABASES))
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SiteContext]:
    with opened_site(request.param, tmp_path) as site:
        yield site


@contextmanager
def _statements(ctx: SiteContext) -> Iterator[list[str]]:
    """Yield every statement the engine sends meanwhile, whitespace folded ("BEGIN…" marks a
    transaction's start: on SQLite the statement that began it)."""
    seen: list[str] = []

    def begin(_conn: Any) -> None:
        if ctx.engine.dialect.name != "sqlite":  # SQLite's begin hook sends its own BEGIN…
            seen.append("BEGIN")

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        folded = " ".join(statement.split())
        seen.append(folded)

    event.listen(ctx.engine, "begin", begin)
    event.listen(ctx.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(ctx.engine, "before_cursor_execute", before)
        event.remove(ctx.engine, "begin", begin)


def _grant(ctx: SiteContext, token: str, index: int, fingerprint: str) -> int:
    grant = issue_grant(ctx, "ST-1", token, "o-test", GrantRequest(
        request_id=f"r-grant-{index:04d}", chip_uid=f"ab00cd{index:02x}", drbg_index=index),
        fingerprint=fingerprint)
    return grant.device_id


def test_next_grant_reads_nothing_before_its_transaction(ctx: SiteContext) -> None:
    token = sign_in(ctx, "ST-1", SessionRequest(operator_id=OPERATOR, pin=PIN)).session_token
    fingerprint = fingerprint_of(ctx, "ST-1")
    _grant(ctx, token, 0, fingerprint)
    with _statements(ctx) as statements:
        _grant(ctx, token, 1, fingerprint)
    begins = [n for n, statement in enumerate(statements) if statement.startswith("BEGIN")]
    assert begins == [0], statements
    assert statements[1].startswith("WITH locked_station AS"), statements[1]
    assert "FROM devices WHERE devices.chip_uid" in statements[1]
    if ctx.engine.dialect.name == "sqlite":
        assert statements[0] == "BEGIN IMMEDIATE"  # the grant's write lock
    if ctx.engine.dialect.name == "postgresql":
        assert "FOR NO KEY UPDATE)" in statements[1]  # the station's row
        assert "FOR UPDATE)" in statements[1]  # the known chip's device row
        assert len(statements) == 1 + 5, statements


def test_cold_process_reads_the_station_first(ctx: SiteContext) -> None:
    token = sign_in(ctx, "ST-1", SessionRequest(operator_id=OPERATOR, pin=PIN)).session_token
    fingerprint = fingerprint_of(ctx, "ST-1")
    _grant(ctx, token, 0, fingerprint)
    ctx.keystreams = KeyStreams(ctx.keys)  # a new process: nothing cached
    with _statements(ctx) as statements:
        device_id = _grant(ctx, token, 1, fingerprint)
    begins = [statement for statement in statements if statement.startswith("BEGIN")]
    assert len(begins) == 2, statements
    assert statements[1].startswith("SELECT stations.station_id"), statements
    assert "FOR" not in statements[1]  # the warm-up read locks nothing
    if ctx.engine.dialect.name == "sqlite":
        assert begins == ["BEGIN", "BEGIN IMMEDIATE"]  # the read takes no write lock
    assert device_id > 0


def test_completion_is_four_statements_on_postgresql(ctx: SiteContext) -> None:
    token = sign_in(ctx, "ST-1", SessionRequest(operator_id=OPERATOR, pin=PIN)).session_token
    fingerprint = fingerprint_of(ctx, "ST-1")
    grant = issue_grant(ctx, "ST-1", token, "o-test", GrantRequest(
        request_id="r-complete", chip_uid="ab00cdff", drbg_index=0), fingerprint=fingerprint)
    with ctx.factory() as session:
        device = session.get(Device, grant.device_id)
        assert device is not None
        digest = device.image_sha256
    with _statements(ctx) as statements:
        done = complete_grant(ctx, "ST-1", token, grant.grant_id, CompleteRequest(
            request_id="c-complete", result=AttemptResult.success, image_sha256=digest,
            verified=True, protected=True), fingerprint=fingerprint)
    assert done.status == "programmed"
    assert statements[1].startswith("WITH locked_grant AS"), statements[1]
    if ctx.engine.dialect.name == "postgresql":
        assert len(statements) == 1 + 4, statements
