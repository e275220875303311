"""Turn a grant into the image one board gets: decrypt the template in memory, patch, digest."""

from __future__ import annotations

import base64
import binascii

from hex_generator import Image, PatchLayout, parse_ihex, patch
from provisioner import wire
from provisioner.crypto import grant_firmware
from provisioner.crypto.secret import Secret
from provisioner.errors import DecryptError
from provisioner.flash.backend import MemorySegment


def _open_envelope(transport_key: Secret, encoded: str, aad: bytes) -> Image:
    """Decrypt and inflate one sealed Intel HEX file into an ``Image``; the plaintext buffers
    are wiped."""
    try:
        blob = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise DecryptError("grant envelope is not valid base64") from exc
    plain = grant_firmware.open_sealed(transport_key, blob, aad)
    try:
        return parse_ihex(plain.decode("ascii"), source="<grant>")
    finally:
        plain[:] = bytes(len(plain))


def open_grant_images(transport_key: Secret,
                      grant: wire.GrantResponse) -> tuple[Image, Image | None]:
    """Return the grant's template and its application image (if any), decrypted in memory.

    Raises:
        DecryptError: an envelope does not authenticate under the transport key and its AAD.
    """
    template = _open_envelope(
        transport_key,
        grant.template,
        wire.template_aad("template", grant.grant_id, grant.device_id),
    )
    if grant.application is None:
        return template, None
    application = _open_envelope(
        transport_key,
        grant.application,
        wire.template_aad("application", grant.grant_id, grant.device_id),
    )
    return template, application


def build_board_image(
    template: Image, layout: PatchLayout, device_id: int, key: Secret,
    application: Image | None = None,
) -> tuple[Image, str]:
    """Patch ``template`` for one board, add the application; return the image and its digest.

    The digest covers the patched template over the layout range (what the site computed); the
    application lies outside that range. The caller wipes ``template`` and the returned image.
    """
    patched = patch(template, layout, device_id, key.reveal())
    digest = patched.sha256(layout.image_start, layout.image_end, layout.fill_byte).hex()
    if application is None:
        return patched, digest
    try:
        return patched.merge(application), digest
    finally:
        patched.wipe()


def segments_of(image: Image) -> list[MemorySegment]:
    """Return the image's segments as flash segments sharing its buffers (no copy)."""
    return [MemorySegment(segment.start, segment.data) for segment in image.segments()]
