"""What the site builds for one delivery and checks on one request (spec §3, §5, §6)."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import Signer
from provisioner.update import derive
from provisioner.update.codec import Manifest, ResultReport, UpdateRequest
from provisioner.update.package import image_digest as sha512
from provisioner.update.package import seal


@dataclass(frozen=True, slots=True)
class ReleaseTerms:
    """The signed numbers of a release that go into every manifest for it."""

    version: int
    requires_version: int
    security_counter: int


def request_mac_ok(device_key: Secret, request: UpdateRequest, tag: bytes) -> bool:
    """Whether ``tag`` authenticates ``request`` under the device's K_req."""
    return derive.mac_matches(derive.request_mac_key(device_key, request.device_id),
                              request.to_bytes(), tag)


def result_mac_ok(device_key: Secret, report: ResultReport, tag: bytes) -> bool:
    """Whether ``tag`` authenticates ``report`` under the device's K_res."""
    return derive.mac_matches(derive.result_mac_key(device_key, report.device_id),
                              report.to_bytes(), tag)


def build_package(
    signer: Signer, device_key: Secret, request: UpdateRequest, terms: ReleaseTerms,
    image: bytes | bytearray, *, delivery_id: int, package_nonce: bytes, issued_at: int,
    image_digest: bytes | None = None,
) -> bytes:
    """Return the package (manifest || signature || ciphertext) answering ``request``.

    ``image_digest`` is the image's SHA-512 when the caller already checked it (the site's
    release cache); it is computed otherwise.
    """
    manifest = Manifest(
        device_id=request.device_id, delivery_id=delivery_id, version=terms.version,
        requires_version=terms.requires_version, security_counter=terms.security_counter,
        image_size=len(image), request_nonce=request.nonce, package_nonce=package_nonce,
        image_digest=image_digest or sha512(image), issued_at=issued_at,
        key_id=bytes.fromhex(signer.key_id),
    )
    return seal(signer, manifest, image, device_key)
