"""A running site's state: database, key provider, signer, clock and per-process caches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hex_generator import Image, parse_ihex
from hw_profiles import Profile, load_profile
from provisioner.crypto import grant_firmware
from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import Signer
from provisioner.hsm.pin import PinPrompt
from provisioner.site.db.engine import make_engine, make_session_factory
from provisioner.site.keyprovider.base import SiteKeys
from provisioner.site.keyprovider.setup import open_site_keys
from provisioner.site.sitedir import SiteDir, SiteSettings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The site clock: aware UTC now."""
    return datetime.now(UTC)


def seed_aad(station_id: str) -> bytes:
    """AAD binding a wrapped station seed to its station."""
    return f"provisioner/site/seed|{station_id}".encode()


def transport_aad(station_id: str) -> bytes:
    """AAD binding a wrapped transport key to its station."""
    return f"provisioner/site/transport|{station_id}".encode()


def device_key_aad(device_id: int, drbg_index: int) -> bytes:
    """AAD binding a wrapped device key to its device and index."""
    return f"provisioner/site/device-key|{device_id}|{drbg_index}".encode()


def release_aad(release_id: str) -> bytes:
    """AAD binding a wrapped release image to its row."""
    return f"provisioner/site/release|{release_id}".encode()


def firmware_aad(firmware_id: str) -> bytes:
    """AAD binding wrapped firmware bytes to their archive entry."""
    return f"provisioner/site/firmware|{firmware_id}".encode()


class KeyStreams:
    """Per-process cache of station key streams: O(1) for a station's next index.

    A stream only moves forward; asking for an index it has passed rebuilds it from the
    wrapped seed and fast-forwards (SP 800-90A HMAC_DRBG cannot run backwards).
    """

    def __init__(self, site_keys: SiteKeys) -> None:
        self._keys = site_keys
        self._streams: dict[str, KeyStream] = {}
        self._lock = threading.Lock()

    def key_at(
        self, station_id: str, wrapped_seed: bytes, drbg_index: int, key_size_bytes: int
    ) -> Secret:
        """Return the key of ``drbg_index`` for a station."""
        stream = self._positioned(station_id, wrapped_seed, drbg_index)
        key = stream.key_at(drbg_index, key_size_bytes)
        with self._lock:
            self._streams[station_id] = stream
        return key

    def advance(self, station_id: str, wrapped_seed: bytes, drbg_index: int) -> None:
        """Move a station's cached stream to ``drbg_index`` (no key), so ``key_at`` is O(1).

        The grant path calls this before it takes any lock: a cold cache (a new process)
        costs one DRBG step per index the station has used, and that work must not run
        under the station's or the database's write lock.
        """
        stream = self._positioned(station_id, wrapped_seed, drbg_index)
        stream.advance_to(drbg_index)
        with self._lock:
            self._streams[station_id] = stream

    def advance_cached(self, station_id: str, drbg_index: int, *, window: int) -> bool:
        """Move a cached stream forward to ``drbg_index`` when it is at most ``window`` steps
        behind; return False (nothing done) when no stream is cached or it passed the index.

        The steady state of a station's grants (index n after n-1) costs no database read.
        """
        with self._lock:
            stream = self._streams.pop(station_id, None)
        if stream is None:
            return False
        if 0 <= drbg_index - stream.next_index <= window:
            stream.advance_to(drbg_index)
            moved = True
        else:
            moved = False
        with self._lock:
            self._streams.setdefault(station_id, stream)
        return moved

    def _positioned(self, station_id: str, wrapped_seed: bytes, drbg_index: int) -> KeyStream:
        """Take the cached stream out, or a new one if there is none or it passed the index."""
        with self._lock:
            stream = self._streams.pop(station_id, None)
        if stream is None or stream.next_index > drbg_index:
            with self._keys.unwrap(wrapped_seed, seed_aad(station_id)) as seed:
                stream = KeyStream.from_seed(seed, station_id)
        return stream


@dataclass(frozen=True, slots=True)
class Template:
    """A bootloader template or application held in memory: parsed image, Intel HEX text, and
    the text deflated as grants seal it (``crypto.grant_firmware``)."""

    image: Image
    ihex: bytes = field(repr=False)
    deflated: bytes = field(repr=False)


class FirmwareCache:
    """Per-process cache of unwrapped firmware and loaded profiles (the site is trusted)."""

    def __init__(self, site_keys: SiteKeys) -> None:
        self._keys = site_keys
        self._firmware: dict[str, Template] = {}
        self._verified: set[tuple[str, ...]] = set()
        self._profiles: dict[str, Profile] = {}
        self._lock = threading.Lock()

    def is_verified(self, row_facts: tuple[str, ...]) -> bool:
        """Whether this process already checked a firmware row with exactly these facts."""
        with self._lock:
            return row_facts in self._verified

    def mark_verified(self, row_facts: tuple[str, ...]) -> None:
        """Remember that a row with these facts passed its signature and digest checks."""
        with self._lock:
            self._verified.add(row_facts)

    def cached(self, firmware_id: str) -> Template | None:
        """Return a firmware entry already unwrapped by this process, if any."""
        with self._lock:
            return self._firmware.get(firmware_id)

    def firmware(self, firmware_id: str, wrapped_bytes: bytes) -> Template:
        """Return a firmware entry's parsed image and text."""
        found = self.cached(firmware_id)
        if found is not None:
            return found
        with self._keys.unwrap(wrapped_bytes, firmware_aad(firmware_id)) as plain:
            text = bytes(plain.reveal())
        template = Template(parse_ihex(text.decode("ascii"), source=firmware_id), text,
                            grant_firmware.deflate(text))
        with self._lock:
            self._firmware[firmware_id] = template
        return template

    def profile(self, name: str) -> Profile:
        """Return a loaded hardware profile."""
        with self._lock:
            found = self._profiles.get(name)
        if found is None:
            found = load_profile(name)
            with self._lock:
                self._profiles[name] = found
        return found


@dataclass
class SiteContext:
    """Everything a request handler or admin function needs to act on one site."""

    site_name: str
    engine: Engine
    factory: sessionmaker[Session]
    keys: SiteKeys
    clock: Clock
    keystreams: KeyStreams
    firmware: FirmwareCache
    settings: SiteSettings

    @property
    def signer(self) -> Signer:
        """The manufacturer key: every signature the site makes goes through it."""
        return self.keys.signer

    def close(self) -> None:
        """Dispose of the engine and close the key provider (wipes or logs out)."""
        self.engine.dispose()
        self.keys.close()


def open_site(
    site_dir: Path, *, clock: Clock = utc_now, db_url: str | None = None,
    pin: Secret | None = None, pin_prompt: PinPrompt | None = None,
) -> SiteContext:
    """Open an initialised site directory (``db_url`` overrides the one in site.json).

    A token site is logged in with ``pin``, else the PIN file, environment or ``pin_prompt``.
    """
    paths = SiteDir(site_dir)
    settings = paths.read_settings()
    site_keys = open_site_keys(paths.root, pin=pin, pin_prompt=pin_prompt)
    engine = make_engine(db_url or settings.db_url)
    return SiteContext(
        site_name=settings.site_name,
        engine=engine,
        factory=make_session_factory(engine),
        keys=site_keys,
        clock=clock,
        keystreams=KeyStreams(site_keys),
        firmware=FirmwareCache(site_keys),
        settings=settings,
    )
