"""The provisioner error tree: one class per failure an operator or engineer must tell apart.

```
ProvisionerError
├─ ProfileError(file, key_path, reason)
├─ JournalError(code)                          forged, missing, rolled back, unreadable
├─ SiteUnreachable(url, reason)                 retry with the same request_id
├─ SiteProtocolError(status, reason)            the site answered something we cannot read
├─ CryptoError
│  ├─ SealedFileError(path) ─ WrongPassphrase, Tampered, Truncated, UnsupportedVersion,
│  │                          NotABundle
│  ├─ DecryptError
│  ├─ BadSignature(key_id)
│  └─ DrbgError ─ ReseedRequired, IndexBehind(requested, next_index)
├─ FlashError
│  ├─ ProbeError(reason)                         no probe, wrong probe, pyOCD failure
│  ├─ BoardDisconnected(location, reason)        the port or probe went away
│  ├─ LinkTimeout(command, phase, address)
│  ├─ BootloaderNack(command, phase, address)
│  ├─ GarbledReply(command, phase, expected, got)
│  ├─ ChipMismatch(expected_pid, found_pid)
│  ├─ ReadoutProtected(operation)
│  ├─ VerifyMismatch(address, expected, found)
│  ├─ AddressOutOfRange(address, size)
│  ├─ OperatorActionRequired(action)
│  └─ TargetOperationFailed(operation, reason, address)   bus fault, flash algorithm failure
├─ Refused(detail)  — .code is the wire code, rendered as problem+json by MRO lookup
│  ├─ QuotaExhausted          quota_exhausted
│  ├─ DuplicateChip           duplicate_chip
│  ├─ IndexReused(expected)   index_reused
│  ├─ IndexOutOfWindow        index_out_of_window  (more than the site's window ahead)
│  ├─ OrderClosed             order_closed
│  ├─ OrderNotFound           order_not_found
│  ├─ StationNotAllowed       station_not_allowed
│  ├─ StationInactive         station_inactive
│  ├─ GrantNotFound           grant_not_found
│  ├─ GrantExpired            grant_expired
│  ├─ GrantAlreadyCompleted   grant_already_completed
│  ├─ ChipQuarantined         chip_quarantined
│  ├─ FirmwareProfileMismatch firmware_profile_mismatch   (firmware registered for another profile)
│  ├─ EnrolmentReused         enrolment_reused   (a bundle's one-time enrolment used again: alarm)
│  ├─ AuthenticationFailed    authentication_failed
│  ├─ OperatorLocked          operator_locked
│  ├─ UnknownDevice           unknown_device
│  ├─ BadMac                  bad_mac
│  ├─ NotEntitled             not_entitled        (field update: device not enabled)
│  ├─ PredecessorRequired     predecessor_required
│  ├─ DowngradeRefused        downgrade_refused
│  ├─ UpToDate                up_to_date
│  ├─ ReplayedNonce           replayed_nonce
│  ├─ AlreadyDelivered        already_delivered   (clone alarm)
│  ├─ DeliveryNotFound        delivery_not_found
│  ├─ ResultAlreadyReported   result_already_reported
│  ├─ ReleaseInvalid(release_id)  release_invalid  (500: a release row fails its checks: alarm)
│  ├─ AlreadyProvisioned(device_id)  already_provisioned   (station side: ID zone not blank)
│  ├─ SiteBusy                site_unavailable   (503: retry with the same request_id)
│  ├─ InvalidRequest          invalid_request
│  ├─ BodyTooLarge            body_too_large     (413)
│  └─ RateLimited(retry_after_s)  rate_limited   (429)
├─ IllegalTransition(state, event)
├─ InstallRefused(reason, detail)   a device refuses or rolls back an update package
├─ StationConfigError(path, reason)   station data directory missing, not enrolled, invalid
├─ TokenError (provisioner.hsm.errors) ─ ModuleLoadError, TokenNotFound, WrongTokenPin,
│                                         PinUnavailable, TokenKeyMissing, TokenKeyUnsafe, …
└─ AuditError ─ ChainBroken(seq, kind), AuditDataRefused(key_path, reason)
```

Errors keep their facts as attributes and render them in ``__str__``; none ever
carries key, seed, passphrase, template or image bytes.
"""

from __future__ import annotations

from typing import ClassVar


class ProvisionerError(Exception):
    """Root of every error this distribution raises on purpose."""


class ProfileError(ProvisionerError):
    """A hardware profile is missing, unreadable or invalid."""

    def __init__(self, file: str, key_path: str, reason: str) -> None:
        self.file = file
        self.key_path = key_path
        self.reason = reason
        super().__init__(f"{file}: {key_path}: {reason}" if key_path else f"{file}: {reason}")


class JournalError(ProvisionerError):
    """The station journal cannot be opened, written or read consistently.

    ``code`` says which (``journal_forged``, ``journal_missing``, ``journal_rolled_back``,
    ``journal_unreadable``): the station raises it as an alarm at the site.
    """

    def __init__(self, message: str, *, code: str = "journal_unreadable") -> None:
        self.code = code
        super().__init__(message)


class StationConfigError(ProvisionerError):
    """The station's data directory is missing, not enrolled or holds an invalid file."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SiteUnreachable(ProvisionerError):
    """The site did not answer; the same request may be retried with the same request_id."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"site {url} unreachable: {reason}")


class SiteProtocolError(ProvisionerError):
    """The site answered with something the station cannot interpret."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"unexpected site answer (HTTP {status}): {reason}")


# --- crypto -------------------------------------------------------------------------------


class CryptoError(ProvisionerError):
    """A cryptographic operation failed."""


class SealedFileError(CryptoError):
    """A sealed file cannot be opened."""

    reason: ClassVar[str] = "cannot be opened"

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path}: {self.reason}")


class WrongPassphrase(SealedFileError):
    """The passphrase does not open the sealed file."""

    reason = "wrong passphrase"


class Tampered(SealedFileError):
    """The sealed file's authentication tag or header does not match its content."""

    reason = "contents were modified (authentication failed)"


class Truncated(SealedFileError):
    """The sealed file is shorter than its header says."""

    reason = "file is truncated"


class UnsupportedVersion(SealedFileError):
    """The sealed file has a format version this program does not know."""

    reason = "unsupported format version"


class NotABundle(SealedFileError):
    """The file is not a sealed enrolment bundle at all (no sealed-file header)."""

    reason = "not an enrolment bundle"


class DecryptError(CryptoError):
    """An envelope failed authentication or is malformed."""


class BadSignature(CryptoError):
    """A signature does not verify under the named key."""

    def __init__(self, key_id: str, what: str = "data") -> None:
        self.key_id = key_id
        self.what = what
        super().__init__(f"signature over {what} does not verify under key {key_id}")


class DrbgError(CryptoError):
    """The DRBG was used outside its rules."""


class ReseedRequired(DrbgError):
    """The DRBG reached its reseed interval (SP 800-90A §10.1.2.5 step 1)."""


class IndexBehind(DrbgError):
    """A key stream was asked for an index it has already passed; it never goes back."""

    def __init__(self, requested: int, next_index: int) -> None:
        self.requested = requested
        self.next_index = next_index
        super().__init__(
            f"key index {requested} is behind the stream's next index {next_index}"
        )


# --- flash --------------------------------------------------------------------------------


def _hex_address(address: int | None) -> str:
    return "" if address is None else f" at 0x{address:08X}"


class FlashError(ProvisionerError):
    """Talking to the chip failed."""


class ProbeError(FlashError):
    """The debug probe or its session failed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class BoardDisconnected(FlashError):
    """The board's serial port or debug probe went away (unplugged, cable, power)."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"board disconnected from {location} ({reason})")


class LinkTimeout(FlashError):
    """The chip did not answer in time."""

    def __init__(self, command: str, phase: str, address: int | None = None) -> None:
        self.command = command
        self.phase = phase
        self.address = address
        super().__init__(f"{command}: no answer {phase}{_hex_address(address)}")


class BootloaderNack(FlashError):
    """The ROM bootloader refused a command (NACK)."""

    def __init__(self, command: str, phase: str, address: int | None = None) -> None:
        self.command = command
        self.phase = phase
        self.address = address
        super().__init__(f"{command}: NACK {phase}{_hex_address(address)}")


class GarbledReply(FlashError):
    """The chip answered bytes that make no sense at this point of the protocol."""

    def __init__(self, command: str, phase: str, expected: str, got: bytes) -> None:
        self.command = command
        self.phase = phase
        self.expected = expected
        self.got = got
        super().__init__(f"{command}: garbled reply {phase}: expected {expected}, got {got.hex()}")


class ChipMismatch(FlashError):
    """The chip's product ID (STM32 DEV_ID, nRF52 INFO.PART) is not the one the profile names."""

    def __init__(self, expected_pid: int, found_pid: int) -> None:
        self.expected_pid = expected_pid
        self.found_pid = found_pid
        super().__init__(
            f"wrong chip: profile expects PID 0x{expected_pid:03X}, chip reports 0x{found_pid:03X}"
        )


class ReadoutProtected(FlashError):
    """The chip refuses the operation because readout protection is active."""

    def __init__(self, operation: str) -> None:
        self.operation = operation
        super().__init__(f"{operation} refused: the chip is readout-protected")


class VerifyMismatch(FlashError):
    """Read-back differs from what was programmed."""

    def __init__(self, address: int, expected: int, found: int) -> None:
        self.address = address
        self.expected = expected
        self.found = found
        super().__init__(
            f"verify failed at 0x{address:08X}: expected 0x{expected:02X}, found 0x{found:02X}"
        )


class AddressOutOfRange(FlashError):
    """An operation falls outside the chip's flash."""

    def __init__(self, address: int, size: int) -> None:
        self.address = address
        self.size = size
        super().__init__(f"range 0x{address:08X}+{size} lies outside the chip's flash")


class OperatorActionRequired(FlashError):
    """The hardware needs a human (BOOT0/RESET not wired, board not in bootloader)."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"operator action required: {action}")


class TargetOperationFailed(FlashError):
    """The chip answered a debug transfer with a fault, or its flash algorithm reported failure."""

    def __init__(self, operation: str, reason: str, address: int | None = None) -> None:
        self.operation = operation
        self.reason = reason
        self.address = address
        super().__init__(f"{operation} failed{_hex_address(address)}: {reason}")


# --- refusals (wire codes) ----------------------------------------------------------------


class Refused(ProvisionerError):
    """The site or the station refuses a request for a stated reason."""

    code: ClassVar[str] = "refused"
    http_status: ClassVar[int] = 409

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"{self.code}: {detail}")


class QuotaExhausted(Refused):
    """The order has no authorised units left."""

    code = "quota_exhausted"


class DuplicateChip(Refused):
    """This chip is already provisioned or reserved."""

    code = "duplicate_chip"


class IndexReused(Refused):
    """The DRBG index is behind the station's next expected index."""

    code = "index_reused"

    def __init__(self, detail: str, expected: int) -> None:
        self.expected = expected
        super().__init__(detail)


class IndexOutOfWindow(Refused):
    """The requested DRBG index is further ahead of the station's next index than allowed."""

    code = "index_out_of_window"
    http_status = 422


class OrderClosed(Refused):
    """The production order is closed."""

    code = "order_closed"


class OrderNotFound(Refused):
    """No such production order."""

    code = "order_not_found"
    http_status = 404


class StationNotAllowed(Refused):
    """This station may not serve this order."""

    code = "station_not_allowed"
    http_status = 403


class StationInactive(Refused):
    """The station is suspended, revoked or unknown."""

    code = "station_inactive"
    http_status = 403


class GrantNotFound(Refused):
    """No such grant for this station."""

    code = "grant_not_found"
    http_status = 404


class GrantExpired(Refused):
    """The grant's time window has passed."""

    code = "grant_expired"


class GrantAlreadyCompleted(Refused):
    """The grant was already completed with a different result."""

    code = "grant_already_completed"


class ChipQuarantined(Refused):
    """The chip failed too often and is quarantined."""

    code = "chip_quarantined"


class FirmwareProfileMismatch(Refused):
    """A firmware image was registered for a different hardware profile than the order's."""

    code = "firmware_profile_mismatch"


class EnrolmentReused(Refused):
    """The station's one-time enrolment was already used (the bundle was opened twice)."""

    code = "enrolment_reused"


class AuthenticationFailed(Refused):
    """Operator id or PIN is wrong."""

    code = "authentication_failed"
    http_status = 401


class OperatorLocked(Refused):
    """The operator is locked out after repeated failures."""

    code = "operator_locked"
    http_status = 423


class UnknownDevice(Refused):
    """A field device the site never registered."""

    code = "unknown_device"
    http_status = 404


class BadMac(Refused):
    """A field request's MAC does not verify."""

    code = "bad_mac"
    http_status = 401


class NotEntitled(Refused):
    """The device is not programmed, revoked, or its entitlement ended."""

    code = "not_entitled"
    http_status = 403


class PredecessorRequired(Refused):
    """The release needs a version the device does not run yet."""

    code = "predecessor_required"


class DowngradeRefused(Refused):
    """The newest release is older than what the device runs or allows."""

    code = "downgrade_refused"


class UpToDate(Refused):
    """No release newer than the device's version."""

    code = "up_to_date"
    http_status = 404


class ReplayedNonce(Refused):
    """A field request reuses a nonce this device already used."""

    code = "replayed_nonce"


class AlreadyDelivered(Refused):
    """This release was already delivered to this device ID (clone alarm)."""

    code = "already_delivered"


class ReleaseInvalid(Refused):
    """A stored release fails its manufacturer signature or digest (row edited: alarm)."""

    code = "release_invalid"
    http_status = 500

    def __init__(self, detail: str, *, release_id: str = "") -> None:
        self.release_id = release_id
        super().__init__(detail)


class DeliveryNotFound(Refused):
    """A result names a delivery that does not exist for this device."""

    code = "delivery_not_found"
    http_status = 404


class ResultAlreadyReported(Refused):
    """The outcome of this delivery was already reported."""

    code = "result_already_reported"


class AlreadyProvisioned(Refused):
    """The chip's ID zone is not blank: it carries a device ID already."""

    code = "already_provisioned"

    def __init__(self, detail: str, device_id: int | None = None) -> None:
        self.device_id = device_id
        super().__init__(detail)


class SiteBusy(Refused):
    """The site could not finish the request now (database busy); retry with the same request_id."""

    code = "site_unavailable"
    http_status = 503


class InvalidRequest(Refused):
    """The request is malformed."""

    code = "invalid_request"
    http_status = 422


class BodyTooLarge(Refused):
    """The request body is larger than the endpoint accepts."""

    code = "body_too_large"
    http_status = 413


class RateLimited(Refused):
    """One source sent more requests than its rate allows; retry after ``retry_after_s``."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, detail: str, retry_after_s: float = 1.0) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(detail)


# --- engine and audit ---------------------------------------------------------------------


class IllegalTransition(ProvisionerError):
    """The provisioning engine was fed an event its transition table forbids."""

    def __init__(self, state: str, event: str) -> None:
        self.state = state
        self.event = event
        super().__init__(f"event {event!r} is not allowed in state {state!r}")


class InstallRefused(ProvisionerError):
    """A device refused an update package or rolled an install back (``reason`` is its code)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class AuditError(ProvisionerError):
    """The audit log cannot be written, exported or verified."""


class ChainBroken(AuditError):
    """The audit chain fails verification at a given entry."""

    def __init__(self, seq: int, kind: str) -> None:
        self.seq = seq
        self.kind = kind
        super().__init__(f"audit chain broken at seq {seq}: {kind}")


class AuditDataRefused(AuditError):
    """Audit entry data holds something it must not (a secret-looking field, bytes, a float)."""

    def __init__(self, key_path: str, reason: str) -> None:
        self.key_path = key_path
        self.reason = reason
        super().__init__(f"audit data field {key_path!r} refused: {reason}")


def refusal_classes() -> dict[str, type[Refused]]:
    """Return every concrete refusal class by its wire code (the site and client share it)."""
    found: dict[str, type[Refused]] = {}
    pending: list[type[Refused]] = [Refused]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls
        pending.extend(cls.__subclasses__())
    return found
