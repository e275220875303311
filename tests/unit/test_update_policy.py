"""The update decision rules, in the spec's order, and the per-source rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioner.errors import (
    AlreadyDelivered,
    DowngradeRefused,
    NotEntitled,
    PredecessorRequired,
    ReplayedNonce,
    UpToDate,
)
from provisioner.site.updates.packaging import ReleaseTerms
from provisioner.site.updates.policy import (
    DELIVERED,
    REDELIVERY_WINDOW,
    AnsweredRequest,
    DeviceState,
    PriorDelivery,
    check_entitled,
    check_redelivery,
    check_release,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)
V1, V2 = 0x010000, 0x020000
PRIOR = PriorDelivery(5, NOW, "10.0.0.1", "00" * 16)


@pytest.mark.parametrize(("device", "entitled"), [
    (DeviceState(1, "programmed", False, None), True),
    (DeviceState(1, "programmed", False, NOW + timedelta(seconds=1)), True),
    (DeviceState(1, "programmed", False, NOW), False),
    (DeviceState(1, "programmed", True, None), False),
    (DeviceState(1, "failed", False, None), False),
    (DeviceState(1, "reserved", False, None), False),
])
def test_entitlement(device: DeviceState, entitled: bool) -> None:
    if entitled:
        check_entitled(device, NOW)
    else:
        with pytest.raises(NotEntitled):
            check_entitled(device, NOW)


@pytest.mark.parametrize(("terms", "current", "counter", "prior", "refusal"), [
    (None, 0, 0, None, UpToDate),
    (ReleaseTerms(V1, 0, 0), V1, 0, None, UpToDate),
    (ReleaseTerms(V1, 0, 0), V2, 0, None, DowngradeRefused),
    (ReleaseTerms(V1, 0, 0), 0, V2, None, DowngradeRefused),
    (ReleaseTerms(V2, V1, 0), 0, 0, None, PredecessorRequired),
    (ReleaseTerms(V2, V1, 0), V1, 0, PRIOR, AlreadyDelivered),
    (ReleaseTerms(V2, 0, 0), 0, 0, PRIOR, AlreadyDelivered),
])
def test_release_refusals(terms: ReleaseTerms | None, current: int, counter: int,
                          prior: PriorDelivery | None, refusal: type[Exception]) -> None:
    with pytest.raises(refusal):
        check_release(terms, current, counter, prior)


def test_release_delivered_when_every_rule_passes() -> None:
    terms = ReleaseTerms(V2, V1, V1)
    assert check_release(terms, V1, V1, None) == terms


MAC = "ab" * 64
ANSWERED = AnsweredRequest(9, MAC, V1, NOW, DELIVERED)


def test_the_very_same_request_within_the_window_is_answered_again() -> None:
    assert check_redelivery(ANSWERED, "00" * 16, MAC, V1, NOW + REDELIVERY_WINDOW) == 9


@pytest.mark.parametrize(("answered", "mac", "current", "now", "why"), [
    (None, MAC, V1, NOW, "got no delivery"),
    (ANSWERED, "ab" * 63 + "ac", V1, NOW, "another request"),
    (ANSWERED, MAC, V2, NOW, "another request"),
    (AnsweredRequest(9, None, V1, NOW, DELIVERED), MAC, V1, NOW, "another request"),
    (AnsweredRequest(9, MAC, V1, NOW, "installed"), MAC, V1, NOW, "reported installed"),
    (AnsweredRequest(9, MAC, V1, NOW, "rolled_back"), MAC, V1, NOW, "reported rolled_back"),
    (ANSWERED, MAC, V1, NOW + REDELIVERY_WINDOW + timedelta(seconds=1), "older than"),
])
def test_anything_else_with_a_used_nonce_is_replayed(
        answered: AnsweredRequest | None, mac: str, current: int, now: datetime,
        why: str) -> None:
    with pytest.raises(ReplayedNonce) as caught:
        check_redelivery(answered, "00" * 16, mac, current, now)
    assert why in caught.value.detail
