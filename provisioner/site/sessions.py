"""Operator sign-in with lockout, and bearer tokens bound to one station."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.orm import Session

from provisioner.audit.chain import AuditEvent
from provisioner.crypto.pins import hash_pin, verify_pin
from provisioner.errors import AuthenticationFailed, OperatorLocked
from provisioner.site.context import SiteContext
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Operator, SignInSession
from provisioner.wire import SessionRequest, SessionResponse

MAX_PIN_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
MAX_LOCKOUT = timedelta(days=1)
SESSION_LIFETIME = timedelta(hours=12)


@functools.cache
def _dummy_hash() -> str:
    return hash_pin(secrets.token_urlsafe(16))


def token_digest(token: str) -> str:
    """The stored form of a session token (its SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def lockout_after(failures: int) -> timedelta | None:
    """Return how long ``failures`` consecutive wrong PINs lock an operator out, if at all.

    From the ``MAX_PIN_FAILURES``-th failure on, every further one doubles the lockout (15 min,
    30 min, 1 h, … up to a day); only a correct PIN or an admin reset clears the count.
    """
    if failures < MAX_PIN_FAILURES:
        return None
    doublings = min(failures - MAX_PIN_FAILURES, 16)
    lockout: timedelta = LOCKOUT * (1 << doublings)
    return min(lockout, MAX_LOCKOUT)


def _is_locked(operator: Operator, now: datetime) -> bool:
    return operator.locked_until is not None and now < _aware(operator.locked_until, now)


def _aware(value: datetime, like: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=like.tzinfo)


def sign_in(ctx: SiteContext, station_id: str, request: SessionRequest) -> SessionResponse:
    """Check an operator's PIN and return a session token bound to ``station_id``.

    The PIN hash (scrypt) is checked outside any transaction so the write lock is never
    held during it; the outcome is then recorded, with the lockout rule, in one transaction.

    Raises:
        AuthenticationFailed: unknown operator or wrong PIN (audited).
        OperatorLocked: the operator is locked out (``lockout_after``; audited).
    """
    with ctx.factory() as session:
        operator = session.get(Operator, request.operator_id)
        stored = operator.pin_hash if operator is not None else None
    # An unknown operator costs the same scrypt as a known one (no enumeration by timing).
    pin_ok = verify_pin(request.pin, stored or _dummy_hash()) and stored is not None
    actor = f"station:{station_id}"
    failure: AuthenticationFailed | OperatorLocked | None = None
    token = secrets.token_urlsafe(32)
    with transaction(ctx.factory) as session:
        now = ctx.clock()
        locked = session.get(Operator, request.operator_id, with_for_update=True,
                             populate_existing=True)
        data: dict[str, object] = {"operator_id": request.operator_id, "station_id": station_id}
        if locked is None:
            failure = AuthenticationFailed("unknown operator or wrong PIN")
            event = AuditEvent.operator_sign_in_failed
        elif _is_locked(locked, now):
            failure = OperatorLocked(f"operator {request.operator_id} is locked out")
            event = AuditEvent.operator_sign_in_failed
        elif not pin_ok:
            locked.failures += 1
            data["failures"] = locked.failures
            event = AuditEvent.operator_sign_in_failed
            failure = AuthenticationFailed("unknown operator or wrong PIN")
            lockout = lockout_after(locked.failures)
            if lockout is not None:
                locked.locked_until = now + lockout
                data["lockout_s"] = int(lockout.total_seconds())
                event = AuditEvent.operator_locked
                failure = OperatorLocked(
                    f"operator {request.operator_id} locked out for "
                    f"{int(lockout.total_seconds() // 60)} minutes after "
                    f"{locked.failures} failures in a row"
                )
        else:
            locked.failures = 0
            locked.locked_until = None
            event = AuditEvent.operator_signed_in
            session.add(SignInSession(
                token_sha256=token_digest(token), operator_id=request.operator_id,
                station_id=station_id, expires_at=now + SESSION_LIFETIME,
            ))
        if failure is not None:
            data["code"] = failure.code
        repo.append_audit(session, signer=ctx.signer, now=now, actor=actor, event=event,
                          data=data)
    if failure is not None:
        raise failure
    return SessionResponse(
        operator_id=request.operator_id, session_token=token, expires_at=now + SESSION_LIFETIME
    )


_SESSIONS = cast(Table, SignInSession.__table__)
_SESSION = select(_SESSIONS.c.operator_id, _SESSIONS.c.station_id, _SESSIONS.c.expires_at).where(
    _SESSIONS.c.token_sha256 == bindparam("token_sha256"))


def operator_for_token(
    executor: Session | Connection, token: str, station_id: str, now: datetime
) -> str:
    """Return the operator of a live session token issued to ``station_id``.

    Read fresh on every call (one indexed select), so a signed-out or reset operator's token
    stops working at once.

    Raises:
        AuthenticationFailed: unknown, expired or another station's token.
    """
    row = executor.execute(_SESSION, {"token_sha256": token_digest(token)}).one_or_none()
    return session_operator(None if row is None else (row[0], row[1], row[2]), station_id, now)


def session_operator(
    found: tuple[str, str, datetime] | None, station_id: str, now: datetime
) -> str:
    """Return the operator of a session row ``(operator_id, station_id, expires_at)`` read by
    the caller, if it is live and bound to ``station_id``.

    Raises:
        AuthenticationFailed: no row, expired or another station's token.
    """
    if (
        found is None
        or not hmac.compare_digest(found[1], station_id)
        or _aware(found[2], now) <= now
    ):
        raise AuthenticationFailed("no valid operator session for this station (sign in)")
    return found[0]


def sign_out_all(session: Session, operator_id: str) -> None:
    """Drop every session of an operator (after a PIN reset)."""
    session.execute(delete(SignInSession).where(SignInSession.operator_id == operator_id))
