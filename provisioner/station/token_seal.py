"""Station secrets sealed under a non-extractable AES key on the station's PKCS#11 token.

Instead of scrypt + a passphrase, ``station.token-sealed`` is one AES-256-GCM envelope made on
the token (key ``provisioner-station-seal``); unlocking needs the token and its user PIN. The
key-stream state file stays as it is: its key derives from the transport key inside this
envelope, so it too is useless without the token. ``station-token.json`` names module, token
and key label (never the PIN).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from provisioner.crypto import envelope
from provisioner.crypto.sealed import StationSecrets
from provisioner.crypto.secret import Secret
from provisioner.errors import DecryptError, StationConfigError
from provisioner.hsm import objects
from provisioner.hsm.objects import KeyKind
from provisioner.hsm.token import Token

TOKEN_CONFIG_NAME = "station-token.json"  # noqa: S105 (a file name)
TOKEN_SEALED_NAME = "station.token-sealed"  # noqa: S105 (a file name)
SEAL_LABEL = "provisioner-station-seal"


@dataclass(frozen=True, slots=True)
class StationToken:
    """The station's token and the label of its sealing key."""

    module: str
    token_label: str
    key_label: str = SEAL_LABEL


def _aad(station_id: str) -> bytes:
    return f"provisioner/station-secrets/token|{station_id}".encode()


def token_config(data_dir: Path) -> StationToken | None:
    """Return the station's token settings, or None for a passphrase-sealed station."""
    path = data_dir / TOKEN_CONFIG_NAME
    try:
        return StationToken(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise StationConfigError(str(path), f"malformed token settings: {exc}") from exc


def seal_on_token(data_dir: Path, secrets: StationSecrets, token: StationToken,
                  pin: Secret) -> None:
    """Generate (or adopt) the sealing key on the token and seal ``secrets`` under it."""
    session = Token(token.module, token.token_label, pin)
    try:
        if objects.has_key(session, token.key_label, KeyKind.aes):
            objects.check_protected(session, token.key_label, KeyKind.aes)
        else:
            objects.generate(session, token.key_label, KeyKind.aes)
        payload = secrets.to_bytes()
        try:
            blob = envelope.encrypt_with(objects.TokenAesGcm(session, token.key_label),
                                         payload, _aad(secrets.station_id))
        finally:
            payload[:] = bytes(len(payload))
    finally:
        session.close()
    target = data_dir / TOKEN_SEALED_NAME
    temp = target.with_suffix(".tmp")
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(blob)
        out.flush()
        os.fsync(out.fileno())
    temp.replace(target)  # a resumed enrolment seals again over its earlier attempt
    (data_dir / TOKEN_CONFIG_NAME).write_text(json.dumps(asdict(token), indent=2) + "\n",
                                              encoding="utf-8")


def unseal_from_token(data_dir: Path, station_id: str, token: StationToken,
                      pin: Secret) -> StationSecrets:
    """Open ``station.token-sealed`` on the token.

    Raises:
        TokenError: module, token, PIN or key missing.
        StationConfigError: the file is missing, modified, or sealed by another token.
    """
    path = data_dir / TOKEN_SEALED_NAME
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise StationConfigError(str(path), f"cannot read sealed secrets: {exc.strerror}") from exc
    session = Token(token.module, token.token_label, pin)
    try:
        cipher = objects.TokenAesGcm(session, token.key_label)
        try:
            payload = envelope.decrypt_with(cipher, blob, _aad(station_id))
        except DecryptError as exc:
            raise StationConfigError(str(path), "sealed secrets do not open on this token "
                                     "(modified, or another token's)") from exc
    finally:
        session.close()
    try:
        return StationSecrets.from_bytes(payload)
    finally:
        payload[:] = bytes(len(payload))
