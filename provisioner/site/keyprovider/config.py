"""``keys.json`` in the site directory: which provider holds the keys (never a PIN or key).

No file means key files (the default, and every site made before PKCS#11 support).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from provisioner.site.sitedir import SiteDirError

KEYS_FILE = "keys.json"
MASTER_LABEL = "provisioner-master"
SIGNING_LABEL = "provisioner-signing"
CA_LABEL = "provisioner-ca"


@dataclass(frozen=True, slots=True)
class TokenConfig:
    """A PKCS#11 token and the labels of the site's three keys on it."""

    module: str
    token_label: str
    master_label: str = MASTER_LABEL
    signing_label: str = SIGNING_LABEL
    ca_label: str = CA_LABEL
    pin_file: str | None = None

    @property
    def pin_path(self) -> Path | None:
        """The PIN file to read when no other source is given, if configured."""
        return Path(self.pin_file) if self.pin_file else None


def keys_path(root: Path) -> Path:
    """Where ``keys.json`` lives."""
    return root / KEYS_FILE


def read_token_config(root: Path) -> TokenConfig | None:
    """Return the token configuration, or None for key files.

    Raises:
        SiteDirError: ``keys.json`` is malformed.
    """
    path = keys_path(root)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise SiteDirError(path, f"malformed key settings: {exc}") from exc
    if raw.get("provider") != "pkcs11":
        raise SiteDirError(path, f"unknown key provider {raw.get('provider')!r}")
    try:
        return TokenConfig(**raw["pkcs11"])
    except (KeyError, TypeError) as exc:
        raise SiteDirError(path, f"malformed key settings: {exc}") from exc


def write_token_config(root: Path, config: TokenConfig, *, name: str = KEYS_FILE) -> Path:
    """Write ``keys.json`` (or a side file ``name``) atomically; return its path."""
    target = root / name
    temp = target.with_suffix(".tmp")
    temp.write_text(json.dumps({"provider": "pkcs11", "pkcs11": asdict(config)}, indent=2)
                    + "\n", encoding="utf-8")
    with temp.open("rb") as handle:
        os.fsync(handle.fileno())
    temp.replace(target)
    return target
