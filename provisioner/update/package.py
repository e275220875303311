"""Seal an image for one device and open it there (spec §6): Ed25519 + ChaCha20-Poly1305."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import Signer, VerifyKey
from provisioner.errors import BadSignature, InstallRefused
from provisioner.update.codec import MANIFEST_SIZE, SIGNATURE_SIZE, TAG_SIZE, Manifest, Reason
from provisioner.update.derive import package_key

HEADER_SIZE = MANIFEST_SIZE + SIGNATURE_SIZE


def image_digest(image: bytes | bytearray) -> bytes:
    """SHA-512 of a plaintext image."""
    return hashlib.sha512(image).digest()


def seal(signer: Signer, manifest: Manifest, image: bytes | bytearray,
         device_key: Secret) -> bytes:
    """Return manifest || signature || ciphertext for the device ``manifest`` names."""
    header = manifest.to_bytes()
    with package_key(device_key, manifest.device_id, manifest.version,
                     manifest.delivery_id) as key:
        cipher = ChaCha20Poly1305(bytes(key.reveal()))
    # ``image`` is encrypted where it lies (no copy of the plaintext); one join builds the package.
    return b"".join((header, signer.sign(header),
                     cipher.encrypt(manifest.package_nonce, image, header)))


@dataclass(frozen=True, slots=True)
class SignedManifest:
    """A package's manifest after its signature verified, with the ciphertext that follows."""

    manifest: Manifest
    header: bytes
    ciphertext: bytes


def verify(verify_key: VerifyKey, package: bytes) -> SignedManifest:
    """Check the manifest's signature (the first step on the device).

    Raises:
        InstallRefused: ``malformed`` (too short, bad layout, wrong size) or ``bad_signature``.
    """
    if len(package) < HEADER_SIZE + TAG_SIZE:
        raise InstallRefused(Reason.malformed.name, f"package is only {len(package)} bytes")
    header = package[:MANIFEST_SIZE]
    manifest = Manifest.parse(header)
    try:
        verify_key.verify(header, package[MANIFEST_SIZE:HEADER_SIZE], "update manifest")
    except BadSignature as exc:
        raise InstallRefused(Reason.bad_signature.name, str(exc)) from exc
    ciphertext = package[HEADER_SIZE:]
    if len(ciphertext) != manifest.image_size + TAG_SIZE:
        raise InstallRefused(Reason.malformed.name,
                             f"ciphertext is {len(ciphertext)} bytes, manifest says "
                             f"{manifest.image_size} + {TAG_SIZE}")
    return SignedManifest(manifest, header, ciphertext)


def decrypt(signed: SignedManifest, device_key: Secret) -> bytearray:
    """Decrypt and check the tag, then the digest; return the plaintext (caller wipes it).

    Raises:
        InstallRefused: ``decrypt_failed`` (tag: wrong key, flipped byte) or ``bad_digest``.
    """
    manifest = signed.manifest
    with package_key(device_key, manifest.device_id, manifest.version,
                     manifest.delivery_id) as key:
        cipher = ChaCha20Poly1305(bytes(key.reveal()))
    try:
        plain = bytearray(cipher.decrypt(manifest.package_nonce, signed.ciphertext,
                                         signed.header))
    except InvalidTag as exc:
        raise InstallRefused(Reason.decrypt_failed.name,
                             "authentication tag does not verify under this device's key") from exc
    if image_digest(plain) != manifest.image_digest:
        plain[:] = bytes(len(plain))
        raise InstallRefused(Reason.bad_digest.name, "SHA-512 of the image differs from manifest")
    return plain
