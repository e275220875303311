"""The per-board provisioning state machine: states, events and a pure transition table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from provisioner.errors import IllegalTransition


class AttemptState(StrEnum):
    """Where one board's provisioning attempt stands (STYLE §5)."""

    detected = "detected"
    uid_read = "uid_read"
    granted = "granted"
    key_derived = "key_derived"
    flashing = "flashing"
    verified = "verified"
    locked = "locked"
    reported = "reported"
    refused = "refused"
    failed = "failed"
    unknown = "unknown"


LIVE_STATES: frozenset[AttemptState] = frozenset(
    {
        AttemptState.detected,
        AttemptState.uid_read,
        AttemptState.granted,
        AttemptState.key_derived,
        AttemptState.flashing,
        AttemptState.verified,
        AttemptState.locked,
    }
)
TERMINAL_STATES: frozenset[AttemptState] = frozenset(set(AttemptState) - LIVE_STATES)


class EventKind(StrEnum):
    """What happened, fed back into the engine by the runner."""

    uid_read = "uid_read"
    regrant = "regrant"
    granted = "granted"
    key_derived = "key_derived"
    flash_started = "flash_started"
    verified = "verified"
    locked = "locked"
    reported = "reported"
    refused = "refused"
    failed = "failed"
    outcome_lost = "outcome_lost"
    acknowledged = "acknowledged"


@dataclass(frozen=True, slots=True)
class Event:
    """One outcome; only the fields its kind needs are set."""

    kind: EventKind
    chip_uid: str | None = None
    request_id: str | None = None
    drbg_index: int | None = None
    grant_id: str | None = None
    device_id: int | None = None
    image_sha256: str | None = None
    code: str | None = None
    detail: str = ""


_S = AttemptState
_E = EventKind
# (state, event) -> next state. Terminal states accept only the site's acknowledgement of the
# report that the terminal row announced (the attempt is then closed).
TRANSITIONS: dict[tuple[AttemptState, EventKind], AttemptState] = {
    (_S.detected, _E.uid_read): _S.uid_read,
    (_S.uid_read, _E.regrant): _S.uid_read,
    (_S.uid_read, _E.granted): _S.granted,
    (_S.granted, _E.key_derived): _S.key_derived,
    (_S.key_derived, _E.flash_started): _S.flashing,
    (_S.flashing, _E.verified): _S.verified,
    (_S.verified, _E.locked): _S.locked,
    (_S.verified, _E.reported): _S.reported,
    (_S.locked, _E.reported): _S.reported,
    (_S.flashing, _E.outcome_lost): _S.unknown,
    (_S.reported, _E.acknowledged): _S.reported,
    (_S.failed, _E.acknowledged): _S.failed,
    (_S.unknown, _E.acknowledged): _S.unknown,
    (_S.refused, _E.acknowledged): _S.refused,
}
for _live in LIVE_STATES:
    TRANSITIONS[(_live, _E.refused)] = _S.refused
    TRANSITIONS[(_live, _E.failed)] = _S.failed


@dataclass(frozen=True, slots=True)
class Attempt:
    """One board's attempt as the journal knows it (ids, index, digests; never secrets)."""

    attempt_id: str
    location: str
    order_id: str
    profile: str
    state: AttemptState = AttemptState.detected
    chip_uid: str | None = None
    request_id: str | None = None
    drbg_index: int | None = None
    grant_id: str | None = None
    device_id: int | None = None
    image_sha256: str | None = None
    code: str | None = None
    detail: str = ""
    closed: bool = False

    @property
    def is_terminal(self) -> bool:
        """Whether the attempt reached an end state (it may still await the site's answer)."""
        return self.state in TERMINAL_STATES

    @property
    def needs_report(self) -> bool:
        """Whether the site holds a grant for this attempt whose outcome it has not confirmed."""
        return self.is_terminal and not self.closed and self.grant_id is not None


def advance(attempt: Attempt, event: Event) -> Attempt:
    """Return the attempt after ``event``.

    Raises:
        IllegalTransition: the table has no move for (state, event), or the event lacks a fact
            its kind requires.
    """
    target = TRANSITIONS.get((attempt.state, event.kind))
    if target is None or (attempt.closed and event.kind is not EventKind.acknowledged):
        raise IllegalTransition(attempt.state.value, event.kind.value)
    kind = event.kind
    if kind in (EventKind.uid_read, EventKind.regrant):
        if event.chip_uid is None or event.request_id is None or event.drbg_index is None:
            raise IllegalTransition(attempt.state.value, f"{kind.value} without uid/request/index")
        return replace(
            attempt,
            state=target,
            chip_uid=event.chip_uid,
            request_id=event.request_id,
            drbg_index=event.drbg_index,
        )
    if kind is EventKind.granted:
        if event.grant_id is None or event.device_id is None or event.drbg_index is None:
            raise IllegalTransition(attempt.state.value, f"{kind.value} without grant facts")
        return replace(
            attempt,
            state=target,
            grant_id=event.grant_id,
            device_id=event.device_id,
            drbg_index=event.drbg_index,
        )
    if kind in (EventKind.key_derived, EventKind.verified):
        if event.image_sha256 is None:
            raise IllegalTransition(attempt.state.value, f"{kind.value} without image_sha256")
        return replace(attempt, state=target, image_sha256=event.image_sha256)
    if kind in (EventKind.refused, EventKind.failed, EventKind.outcome_lost):
        return replace(attempt, state=target, code=event.code, detail=event.detail)
    if kind is EventKind.acknowledged:
        return replace(attempt, closed=True)
    return replace(attempt, state=target)
