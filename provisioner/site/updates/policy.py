"""Pure rules deciding whether a device gets a release (no I/O: snapshots in, refusal out)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from provisioner.errors import (
    AlreadyDelivered,
    DowngradeRefused,
    NotEntitled,
    PredecessorRequired,
    ReplayedNonce,
    UpToDate,
)
from provisioner.site.updates.packaging import ReleaseTerms
from provisioner.update.versions import format_version
from provisioner.wire import DeviceStatus

DELIVERED = "delivered"  # a delivery's status until the device reports its outcome
REDELIVERY_WINDOW = timedelta(hours=24)  # spec §4: how long a lost answer may be asked again


@dataclass(frozen=True, slots=True)
class DeviceState:
    """What the site knows of a device when it asks for an update."""

    device_id: int
    status: str
    revoked: bool
    entitled_until: datetime | None


@dataclass(frozen=True, slots=True)
class PriorDelivery:
    """A delivery of the chosen release to this device ID that still counts (not rolled back)."""

    delivery_id: int
    delivered_at: datetime
    source_address: str
    request_nonce: str


@dataclass(frozen=True, slots=True)
class AnsweredRequest:
    """The delivery that answered an earlier request with the same nonce."""

    delivery_id: int
    request_mac: str | None
    current_version: int
    delivered_at: datetime
    status: str


def check_redelivery(answered: AnsweredRequest | None, nonce: str, mac: str,
                     current_version: int, now: datetime) -> int:
    """Return the delivery to answer again for a retried request, or raise ``ReplayedNonce``.

    Only the very same signed request (same nonce and MAC) is answered again, while its
    delivery has no reported outcome and is at most ``REDELIVERY_WINDOW`` old (spec §4).
    """
    where = f"nonce {nonce} was already used"
    if answered is None:
        raise ReplayedNonce(f"{where} by a request that got no delivery")
    if answered.request_mac is None or current_version != answered.current_version or \
            not hmac.compare_digest(answered.request_mac, mac):
        raise ReplayedNonce(f"{where} by another request (delivery {answered.delivery_id})")
    if answered.status != DELIVERED:
        raise ReplayedNonce(f"{where}: delivery {answered.delivery_id} was reported "
                            f"{answered.status}")
    if now - answered.delivered_at > REDELIVERY_WINDOW:
        raise ReplayedNonce(f"{where}: delivery {answered.delivery_id} is older than "
                            f"{REDELIVERY_WINDOW}")
    return answered.delivery_id


def check_entitled(device: DeviceState, now: datetime) -> None:
    """Raise ``NotEntitled`` unless the device is programmed, not revoked, within its end date."""
    if device.status != DeviceStatus.programmed:
        raise NotEntitled(f"device {device.device_id} is {device.status}, not programmed")
    if device.revoked:
        raise NotEntitled(f"device {device.device_id} is revoked")
    if device.entitled_until is not None and now >= device.entitled_until:
        raise NotEntitled(f"device {device.device_id} entitlement ended "
                          f"{device.entitled_until.isoformat()}")


def check_release(terms: ReleaseTerms | None, current_version: int, security_counter: int,
                  prior: PriorDelivery | None) -> ReleaseTerms:
    """Return the release to deliver or raise the refusal that applies, in the spec's order."""
    if terms is None or terms.version == current_version:
        raise UpToDate(f"no release newer than {format_version(current_version)}")
    if terms.version < current_version or terms.version < security_counter:
        raise DowngradeRefused(
            f"newest release {format_version(terms.version)} is below the running "
            f"{format_version(current_version)} or the device's security counter "
            f"{format_version(security_counter)}")
    if current_version < terms.requires_version:
        raise PredecessorRequired(
            f"release {format_version(terms.version)} needs "
            f"{format_version(terms.requires_version)} installed first; device runs "
            f"{format_version(current_version)}")
    if prior is not None:
        raise AlreadyDelivered(
            f"release {format_version(terms.version)} was delivered to this device ID as "
            f"delivery {prior.delivery_id} at {prior.delivered_at.isoformat()} to "
            f"{prior.source_address}")
    return terms
