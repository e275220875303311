"""Per-process cache of unwrapped release images, the signature re-checked on every use."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from provisioner.crypto.secret import Secret
from provisioner.errors import ReleaseInvalid
from provisioner.site.context import SiteContext
from provisioner.site.updates.releases import (
    StoredRelease,
    open_release,
    verify_release,
    wrapped_image,
)


class ReleaseImages:
    """Release images by id, each with the exact row it was checked against.

    A use with that very row (every signed field equal) needs no check again; any other row
    under the id has its manufacturer signature verified and must name the cached image's
    digest and size.
    """

    def __init__(self) -> None:
        self._images: dict[str, tuple[StoredRelease, Secret]] = {}
        self._lock = threading.Lock()

    def image(self, ctx: SiteContext, session: Session, row: StoredRelease) -> bytearray:
        """Return the plaintext image of ``row`` (a live buffer: do not keep or modify it).

        The wrapped image is read through ``session`` only when it is not cached yet.

        Raises:
            ReleaseInvalid: the row's signature, terms, digest or image do not check out.
        """
        with self._lock:
            found = self._images.get(row.release_id)
        if found is None:
            secret = open_release(ctx, row, wrapped_image(session, row.release_id))
            with self._lock:
                found = self._images.setdefault(row.release_id, (row, secret))
            if found[1] is not secret:  # another thread cached it first
                secret.wipe()
            return found[1].reveal()
        checked, secret = found
        if row != checked:
            verify_release(ctx, row)
            if row.image_sha512 != checked.image_sha512 or row.image_size != len(secret):
                raise ReleaseInvalid(f"release {row.release_id}: image digest differs from "
                                     "the one checked when the image was opened",
                                     release_id=row.release_id)
        return secret.reveal()

    def wipe(self) -> None:
        """Wipe every cached image."""
        with self._lock:
            for _, secret in self._images.values():
                secret.wipe()
            self._images.clear()
