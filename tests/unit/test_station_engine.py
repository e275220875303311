"""The station engine: transition table, required facts, hypothesis over event paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.errors import IllegalTransition
from provisioner.station.engine import (
    LIVE_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Attempt,
    AttemptState,
    Event,
    EventKind,
    advance,
)

MAIN_CHAIN = [
    AttemptState.detected,
    AttemptState.uid_read,
    AttemptState.granted,
    AttemptState.key_derived,
    AttemptState.flashing,
    AttemptState.verified,
    AttemptState.locked,
    AttemptState.reported,
]

# A complete event for every kind (facts filled), so sequences only fail on the table.
FULL: dict[EventKind, Event] = {
    kind: Event(
        kind,
        chip_uid="00112233aabbccdd",
        request_id="r" * 12,
        drbg_index=7,
        grant_id="g-1",
        device_id=1001,
        image_sha256="ab" * 32,
        code="x",
        detail="d",
    )
    for kind in EventKind
}


def _fresh() -> Attempt:
    return Attempt("a1", "/dev/pts/1", "order-1", "stm32f103c8")


def test_happy_path_walks_the_main_chain_and_keeps_facts() -> None:
    attempt = _fresh()
    seen = [attempt.state]
    for kind in (EventKind.uid_read, EventKind.granted, EventKind.key_derived,
                 EventKind.flash_started, EventKind.verified, EventKind.locked,
                 EventKind.reported):
        attempt = advance(attempt, FULL[kind])
        seen.append(attempt.state)
    assert seen == MAIN_CHAIN
    assert attempt.chip_uid == "00112233aabbccdd"
    assert (attempt.device_id, attempt.drbg_index) == (1001, 7)
    assert attempt.needs_report
    closed = advance(attempt, FULL[EventKind.acknowledged])
    assert closed.closed
    assert not closed.needs_report
    assert closed.state is AttemptState.reported


def test_protection_is_optional_between_verified_and_reported() -> None:
    attempt = Attempt("a", "l", "o", "p", state=AttemptState.verified, grant_id="g")
    assert advance(attempt, FULL[EventKind.reported]).state is AttemptState.reported


def test_skipping_a_state_is_illegal_and_names_state_and_event() -> None:
    with pytest.raises(IllegalTransition) as info:
        advance(_fresh(), FULL[EventKind.flash_started])
    assert (info.value.state, info.value.event) == ("detected", "flash_started")


@pytest.mark.parametrize("kind", [EventKind.uid_read, EventKind.granted, EventKind.key_derived])
def test_events_lacking_facts_are_refused(kind: EventKind) -> None:
    state = {EventKind.uid_read: AttemptState.detected, EventKind.granted: AttemptState.uid_read,
             EventKind.key_derived: AttemptState.granted}[kind]
    with pytest.raises(IllegalTransition):
        advance(Attempt("a", "l", "o", "p", state=state), Event(kind))


@pytest.mark.parametrize("state", sorted(LIVE_STATES))
def test_every_live_state_can_fail_or_be_refused(state: AttemptState) -> None:
    attempt = Attempt("a", "l", "o", "p", state=state)
    failed = advance(attempt, Event(EventKind.failed, code="link_timeout", detail="no answer"))
    assert (failed.state, failed.code, failed.detail) == (AttemptState.failed, "link_timeout",
                                                          "no answer")
    assert advance(attempt, FULL[EventKind.refused]).state is AttemptState.refused


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_states_accept_only_the_acknowledgement(state: AttemptState) -> None:
    attempt = Attempt("a", "l", "o", "p", state=state)
    for kind in EventKind:
        if kind is EventKind.acknowledged:
            assert advance(attempt, FULL[kind]).closed
        else:
            with pytest.raises(IllegalTransition):
                advance(attempt, FULL[kind])


@given(st.lists(st.sampled_from(list(EventKind)), max_size=20))
def test_any_event_path_follows_the_table(kinds: list[EventKind]) -> None:
    attempt = _fresh()
    for kind in kinds:
        expected = TRANSITIONS.get((attempt.state, kind))
        if expected is None or (attempt.closed and kind is not EventKind.acknowledged):
            with pytest.raises(IllegalTransition):
                advance(attempt, FULL[kind])
            continue
        before = attempt
        attempt = advance(attempt, FULL[kind])
        assert attempt.state is expected
        # the main chain never moves backwards
        if before.state in MAIN_CHAIN and attempt.state in MAIN_CHAIN:
            assert MAIN_CHAIN.index(attempt.state) >= MAIN_CHAIN.index(before.state)
        # once closed, it stays closed and its state never changes again
        if before.closed:
            assert attempt.closed
            assert attempt.state is before.state
