"""The ``SiteKeys`` protocol: master key (wrap/unwrap), manufacturer signer, site CA."""

from __future__ import annotations

from typing import Protocol

from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import Signer
from provisioner.site.keys import CaSigner


class SiteKeys(Protocol):
    """The keys a running site uses, wherever they live.

    ``wrap``/``unwrap`` produce and read the one envelope format of ``crypto.envelope`` (so a
    blob does not say which provider made it, only which key). ``close`` once, at the end.
    """

    @property
    def signer(self) -> Signer:
        """The manufacturer Ed25519 key: audit entries, firmware records, manifests."""
        ...

    @property
    def ca(self) -> CaSigner:
        """The site CA: station and server certificates."""
        ...

    @property
    def description(self) -> str:
        """Where the keys live, for operators (no secret)."""
        ...

    def wrap(self, plaintext: bytes | bytearray, aad: bytes) -> bytes:
        """Encrypt a secret for storage at rest under the master key."""
        ...

    def unwrap(self, blob: bytes, aad: bytes) -> Secret:
        """Return the secret inside a ``wrap`` blob.

        Raises:
            DecryptError: another master key, another ``aad`` or a modified blob.
        """
        ...

    def close(self) -> None:
        """Wipe what is held in memory and release the token."""
        ...
