"""The site directory: where the database, keys, certificates and settings live."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionerError

DEFAULT_SITE_DIR = Path("site-data")


class SiteDirError(ProvisionerError):
    """The site directory is missing, incomplete or already initialised."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True, slots=True)
class SiteDir:
    """Paths of one site directory."""

    root: Path

    @property
    def settings(self) -> Path:
        """site.json: site name and database URL."""
        return self.root / "site.json"

    @property
    def database(self) -> Path:
        """The default SQLite database file."""
        return self.root / "site.db"

    @property
    def master_key(self) -> Path:
        """The master key (0600)."""
        return self.root / "master.key"

    @property
    def signing_key(self) -> Path:
        """The Ed25519 manufacturer key PEM (0600)."""
        return self.root / "signing_key.pem"

    @property
    def ca_cert(self) -> Path:
        """The site CA certificate."""
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The site CA key (0600)."""
        return self.root / "ca_key.pem"

    @property
    def server_cert(self) -> Path:
        """The TLS server certificate."""
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        """The TLS server key (0600)."""
        return self.root / "server_key.pem"

    @property
    def bundles(self) -> Path:
        """Where sealed enrolment bundles are written."""
        return self.root / "bundles"

    def read_settings(self) -> SiteSettings:
        """Read site.json.

        Raises:
            SiteDirError: the directory was never initialised or site.json is malformed.
        """
        try:
            raw = json.loads(self.settings.read_text(encoding="utf-8"))
            return SiteSettings(site_name=str(raw["site_name"]), db_url=str(raw["db_url"]))
        except FileNotFoundError as exc:
            raise SiteDirError(self.root, "not a site directory (run `site init`)") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise SiteDirError(self.settings, f"malformed settings: {exc}") from exc

    def write_settings(self, settings: SiteSettings) -> None:
        """Write site.json."""
        payload = {"site_name": settings.site_name, "db_url": settings.db_url}
        self.settings.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """What site.json holds."""

    site_name: str
    db_url: str
