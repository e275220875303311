"""The site directory: where the database, keys, certificates and settings live."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionerError

DEFAULT_SITE_DIR = Path("site-data")
DEFAULT_INDEX_WINDOW = 4096
DEFAULT_MAX_BODY_BYTES = 64 * 1024
# Request threads per server process. Measured with benchmarks/site.py (32 stations,
# PostgreSQL, 2 workers, 2 CPUs): 2 threads 216 grants/s p99 204 ms, 3 threads 194/s 240 ms,
# 4 threads 153/s 349 ms: more threads only add transactions waiting on the same rows and on
# the interpreter lock. A bigger machine may want more (site.json ``request_threads``).
DEFAULT_REQUEST_THREADS = 2
MAX_REQUEST_THREADS = 256


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
            return SiteSettings(
                site_name=str(raw["site_name"]), db_url=str(raw["db_url"]),
                index_window=_count(raw, "index_window", DEFAULT_INDEX_WINDOW),
                max_body_bytes=_count(raw, "max_body_bytes", DEFAULT_MAX_BODY_BYTES),
                openapi=_flag(raw, "openapi"),
                request_threads=_count(raw, "request_threads", DEFAULT_REQUEST_THREADS,
                                       maximum=MAX_REQUEST_THREADS),
            )
        except FileNotFoundError as exc:
            raise SiteDirError(self.root, "not a site directory (run `site init`)") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise SiteDirError(self.settings, f"malformed settings: {exc}") from exc

    def write_settings(self, settings: SiteSettings) -> None:
        """Write site.json."""
        payload = {
            "site_name": settings.site_name, "db_url": settings.db_url,
            "index_window": settings.index_window, "max_body_bytes": settings.max_body_bytes,
            "openapi": settings.openapi, "request_threads": settings.request_threads,
        }
        self.settings.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _count(raw: dict[str, object], key: str, default: int, *, maximum: int = 2**31) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        top = "2^31" if maximum == 2**31 else str(maximum)
        raise ValueError(f"{key} must be an integer from 1 to {top}, not {value!r}")
    return value


def _flag(raw: dict[str, object], key: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """What site.json holds.

    ``index_window``: how far past a station's next index one grant may ask (each skipped
    index costs the site one DRBG step). ``max_body_bytes``: the largest station request body.
    ``openapi``: serve /v1/openapi.json and /v1/docs (to clients with a station certificate).
    ``request_threads``: threads per server process running requests' database work (on
    PostgreSQL, grants and completions run on the event loop instead: ``site/lane.py``).
    """

    site_name: str
    db_url: str
    index_window: int = DEFAULT_INDEX_WINDOW
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    openapi: bool = False
    request_threads: int = DEFAULT_REQUEST_THREADS
