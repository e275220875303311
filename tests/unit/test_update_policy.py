"""The update decision rules, in the spec's order, and the per-source rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioner.errors import (
    AlreadyDelivered,
    DowngradeRefused,
    NotEntitled,
    PredecessorRequired,
    UpToDate,
)
from provisioner.site.updates.packaging import ReleaseTerms
from provisioner.site.updates.policy import (
    DeviceState,
    PriorDelivery,
    check_entitled,
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
