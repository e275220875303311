"""Fixed little-endian encodings of request, manifest and result report (spec §3, §5, §6)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from provisioner.errors import InstallRefused

FORMAT = 1
NONCE_SIZE = 16
PACKAGE_NONCE_SIZE = 12
DIGEST_SIZE = 64
MAC_SIZE = 64
SIGNATURE_SIZE = 64
TAG_SIZE = 16
KEY_ID_SIZE = 8

REQUEST_MAGIC = b"PVUQ"
MANIFEST_MAGIC = b"PVUM"
RESULT_MAGIC = b"PVUR"

_REQUEST = struct.Struct("<4sB3xIIII16s")
_MANIFEST = struct.Struct("<4sB3xIIIIII16s12s4x64sQ8s")
_RESULT = struct.Struct("<4sBBBxIIII")
REQUEST_SIZE = _REQUEST.size  # 40
MANIFEST_SIZE = _MANIFEST.size  # 144
RESULT_SIZE = _RESULT.size  # 24


class Reason(IntEnum):
    """Why a device refused a package or rolled an install back (spec §6)."""

    none = 0
    malformed = 1
    wrong_device = 2
    bad_signature = 3
    decrypt_failed = 4
    bad_digest = 5
    downgrade = 6
    predecessor_required = 7
    too_large = 8
    stale_package = 9
    write_failed = 10
    self_test_failed = 11
    interrupted = 12
    rollback_counter = 13


class Outcome(StrEnum):
    """What a device reports for a delivery."""

    installed = "installed"
    rolled_back = "rolled_back"


_OUTCOME_CODE = {Outcome.installed: 1, Outcome.rolled_back: 2}


def _malformed(what: str, detail: str) -> InstallRefused:
    return InstallRefused(Reason.malformed.name, f"{what}: {detail}")


def _check_header(data: bytes, size: int, magic: bytes, what: str) -> None:
    if len(data) != size:
        raise _malformed(what, f"{len(data)} bytes, expected {size}")
    if data[:4] != magic:
        raise _malformed(what, f"magic {data[:4]!r}, expected {magic!r}")
    if data[4] != FORMAT:
        raise _malformed(what, f"format {data[4]}, expected {FORMAT}")


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """A device asking for its next update (spec §3); authenticated by a MAC under K_req."""

    device_id: int
    current_version: int
    security_counter: int
    nonce: bytes

    def to_bytes(self) -> bytes:
        """Return the 40 canonical bytes the MAC covers."""
        return _REQUEST.pack(REQUEST_MAGIC, FORMAT, self.device_id, self.current_version,
                             self.security_counter, 0, self.nonce)

    @classmethod
    def parse(cls, data: bytes) -> UpdateRequest:
        """Parse the 40 bytes (raises ``InstallRefused(malformed)``)."""
        _check_header(data, REQUEST_SIZE, REQUEST_MAGIC, "request")
        _, _, device_id, current, counter, reserved, nonce = _REQUEST.unpack(data)
        if reserved or any(data[5:8]):
            raise _malformed("request", "reserved bytes are not zero")
        return cls(device_id, current, counter, nonce)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the manufacturer signs for one delivery (spec §5)."""

    device_id: int
    delivery_id: int
    version: int
    requires_version: int
    security_counter: int
    image_size: int
    request_nonce: bytes
    package_nonce: bytes
    image_digest: bytes
    issued_at: int
    key_id: bytes

    def to_bytes(self) -> bytes:
        """Return the 144 bytes the signature covers (and the AEAD's associated data)."""
        return _MANIFEST.pack(
            MANIFEST_MAGIC, FORMAT, self.device_id, self.delivery_id, self.version,
            self.requires_version, self.security_counter, self.image_size, self.request_nonce,
            self.package_nonce, self.image_digest, self.issued_at, self.key_id,
        )

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Parse the 144 bytes (raises ``InstallRefused(malformed)``)."""
        _check_header(data, MANIFEST_SIZE, MANIFEST_MAGIC, "manifest")
        if any(data[5:8]) or any(data[60:64]):
            raise _malformed("manifest", "reserved bytes are not zero")
        (_, _, device_id, delivery_id, version, requires, counter, size, request_nonce,
         package_nonce, digest, issued_at, key_id) = _MANIFEST.unpack(data)
        return cls(device_id, delivery_id, version, requires, counter, size, request_nonce,
                   package_nonce, digest, issued_at, key_id)


@dataclass(frozen=True, slots=True)
class ResultReport:
    """A device's outcome for one delivery (spec §6); authenticated by a MAC under K_res."""

    outcome: Outcome
    reason: Reason
    device_id: int
    delivery_id: int
    running_version: int
    security_counter: int

    def to_bytes(self) -> bytes:
        """Return the 24 bytes the MAC covers."""
        return _RESULT.pack(RESULT_MAGIC, FORMAT, _OUTCOME_CODE[self.outcome], int(self.reason),
                            self.device_id, self.delivery_id, self.running_version,
                            self.security_counter)

    @classmethod
    def parse(cls, data: bytes) -> ResultReport:
        """Parse the 24 bytes (raises ``InstallRefused(malformed)``)."""
        _check_header(data, RESULT_SIZE, RESULT_MAGIC, "result")
        _, _, outcome, reason, device_id, delivery_id, running, counter = _RESULT.unpack(data)
        if data[7]:
            raise _malformed("result", "reserved byte is not zero")
        outcomes = {code: name for name, code in _OUTCOME_CODE.items()}
        if outcome not in outcomes or reason not in Reason._value2member_map_:
            raise _malformed("result", f"outcome {outcome} / reason {reason} unknown")
        return cls(outcomes[outcome], Reason(reason), device_id, delivery_id, running, counter)
