"""The firmware a grant carries: Intel HEX text, deflated (zlib), sealed in an envelope per grant.

The site deflates an archive entry once per process (the text is the same for every grant of
an order) and seals it for each grant under the station's transport key, with AAD binding the
kind, the grant and the device (``wire.template_aad``); the station opens and inflates it in
memory. Deflated, a grant's answer is about a third of the size (the bench bootloader template:
67.6 KB of Intel HEX, 23.4 KB deflated), and its base64, JSON, TLS and socket costs scale with
that size at the site and at the station. The text holds no secret (the station patches the
key in after opening it), so deflating before sealing shows nothing the envelope's length did
not show already.
"""

from __future__ import annotations

import zlib

from provisioner.crypto import envelope
from provisioner.crypto.secret import Secret
from provisioner.errors import DecryptError

# The largest text a station inflates: Intel HEX of 16 MiB of flash is about 46 MiB.
MAX_TEXT_BYTES = 64 * 2**20


def deflate(text: bytes) -> bytes:
    """Return an entry's Intel HEX text deflated for sealing into grants (zlib's default
    level: on the bench template as small as level 9's, in 2.7 ms instead of 7.3 ms)."""
    return zlib.compress(text)


def open_sealed(key: Secret | bytes | bytearray, blob: bytes, aad: bytes) -> bytearray:
    """Decrypt one sealed entry and return its Intel HEX text (the caller wipes it).

    The deflated plaintext is wiped here. zlib hands the inflated text back as ``bytes``,
    which cannot be wiped; the copy returned can.

    Raises:
        DecryptError: the envelope does not authenticate under ``key`` and ``aad``, or what it
            holds is not one complete zlib stream of at most ``MAX_TEXT_BYTES``.
    """
    deflated = envelope.decrypt(key, blob, aad)
    inflater = zlib.decompressobj()
    try:
        # One byte past the bound tells a stream that inflates to more from one that ends.
        text = bytearray(inflater.decompress(deflated, MAX_TEXT_BYTES + 1))
    except zlib.error as exc:
        raise DecryptError(f"sealed firmware is not zlib data ({exc})") from exc
    finally:
        deflated[:] = bytes(len(deflated))
    if len(text) > MAX_TEXT_BYTES:
        text[:] = bytes(len(text))
        raise DecryptError(f"sealed firmware inflates to more than {MAX_TEXT_BYTES} bytes")
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
        text[:] = bytes(len(text))
        raise DecryptError("sealed firmware is not one complete zlib stream")
    return text
