"""The station's plain (public) configuration file and the layout of its data directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import StationConfigError

CONFIG_NAME = "station.json"
SECRETS_NAME = "station.sealed"
KEYSTREAM_NAME = "keystream.state"
JOURNAL_NAME = "journal.sqlite3"


@dataclass(frozen=True, slots=True)
class StationPaths:
    """Where a station keeps its files (all under one data directory)."""

    data_dir: Path

    @property
    def config(self) -> Path:
        """Public configuration: station id, site URL, CA and client certificates."""
        return self.data_dir / CONFIG_NAME

    @property
    def secrets(self) -> Path:
        """Sealed ``StationSecrets`` (passphrase, scrypt)."""
        return self.data_dir / SECRETS_NAME

    @property
    def keystream(self) -> Path:
        """The DRBG working state, re-encrypted before every key (see ``keystore``)."""
        return self.data_dir / KEYSTREAM_NAME

    @property
    def journal(self) -> Path:
        """The attempt journal (SQLite)."""
        return self.data_dir / JOURNAL_NAME


@dataclass(frozen=True, slots=True)
class StationConfig:
    """Public facts about this station; holds no secret (no seed, no private key)."""

    station_id: str
    site_url: str
    ca_cert_pem: str
    client_cert_pem: str

    def save(self, path: Path) -> None:
        """Write the configuration atomically."""
        text = json.dumps(
            {
                "station_id": self.station_id,
                "site_url": self.site_url,
                "ca_cert_pem": self.ca_cert_pem,
                "client_cert_pem": self.client_cert_pem,
            },
            indent=2,
        )
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text + "\n", encoding="utf-8")
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> StationConfig:
        """Read the configuration.

        Raises:
            StationConfigError: the file is missing or lacks a field.
        """
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                station_id=str(raw["station_id"]),
                site_url=str(raw["site_url"]),
                ca_cert_pem=str(raw["ca_cert_pem"]),
                client_cert_pem=str(raw["client_cert_pem"]),
            )
        except FileNotFoundError as exc:
            raise StationConfigError(str(path), "station not enrolled (no configuration)") from exc
        except (KeyError, ValueError, TypeError) as exc:
            raise StationConfigError(str(path), f"invalid station configuration: {exc}") from exc
