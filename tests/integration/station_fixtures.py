"""Shared helpers for the station integration tests: a served site, a station, board checks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from hex_generator import decode_device_id
from hex_generator.checksums import crc32_stm32
from hw_profiles import Profile, load_profile
from provisioner.demo import DEMO_PROFILE, DemoBoard, DemoSite, demo_site
from provisioner.site.context import device_key_aad
from provisioner.site.db.models import Device, Grant
from provisioner.station.runner import StationRunner
from provisioner.station.unlock import open_station

TEST_SCRYPT_N = 2**10
STATION_PASSPHRASE = "correct horse battery staple"


@dataclass
class SiteDevice:
    """What the site knows about one device, with its key unwrapped for comparison."""

    device_id: int
    chip_uid: str
    drbg_index: int
    status: str
    image_sha256: str
    key: bytes


@contextmanager
def served_site(work_dir: Path) -> Iterator[DemoSite]:
    """A TLS site on loopback with the demo operator and template (cheap scrypt)."""
    with demo_site(work_dir, scrypt_n=TEST_SCRYPT_N) as site:
        yield site


@contextmanager
def station(site: DemoSite, station_dir: Path, station_id: str) -> Iterator[StationRunner]:
    """Enrol ``station_dir`` at ``site``, unlock it and sign the demo operator in."""
    site.enrol_station(station_dir, station_id, STATION_PASSPHRASE)
    runner = open_station(station_dir, STATION_PASSPHRASE)
    try:
        runner.sign_in(site.operator_id, site.pin)
        yield runner
    finally:
        runner.close()


def site_devices(site: DemoSite, order_id: str) -> dict[str, SiteDevice]:
    """Return the site's devices of ``order_id`` by chip UID, keys unwrapped."""
    ctx = site.server.context
    found: dict[str, SiteDevice] = {}
    with ctx.factory() as session:
        for device in session.scalars(select(Device).where(Device.order_id == order_id)):
            with ctx.keys.unwrap(device.wrapped_key,
                                 device_key_aad(device.device_id, device.drbg_index)) as key:
                found[device.chip_uid] = SiteDevice(
                    device.device_id, device.chip_uid, device.drbg_index, device.status,
                    device.image_sha256, bytes(key.reveal()),
                )
    return found


def site_grants(site: DemoSite, order_id: str) -> list[tuple[str, int, str | None]]:
    """Return (chip_uid, drbg_index, result) of every grant of ``order_id``, by index."""
    with site.server.context.factory() as session:
        rows = session.scalars(select(Grant).where(Grant.order_id == order_id)
                               .order_by(Grant.drbg_index))
        return [(g.chip_uid, g.drbg_index, g.result) for g in rows]


def profile() -> Profile:
    """The demo profile."""
    return load_profile(DEMO_PROFILE)


def board_image(board: DemoBoard) -> bytes:
    """The board's flash over the patched image range."""
    layout = profile().patch_layout()
    return board.flash(layout.image_start, layout.image_end - layout.image_start)


def assert_board_matches_site(board: DemoBoard, device: SiteDevice) -> None:
    """The board holds its own device ID, the site's key, a valid checksum and the digest."""
    layout = profile().patch_layout()
    flash = board_image(board)

    def at(address: int, size: int) -> bytes:
        return flash[address - layout.image_start:address - layout.image_start + size]

    id_zone, key_zone = layout.id_zone, layout.key_zone
    assert decode_device_id(at(id_zone.address, id_zone.size_bytes), id_zone) == device.device_id
    assert at(key_zone.address, key_zone.size_bytes) == device.key
    spec = layout.checksum
    assert spec is not None
    stored = int.from_bytes(at(spec.location, spec.size_bytes), spec.byteorder)
    assert stored == crc32_stm32(at(spec.start, spec.end - spec.start))
    assert hashlib.sha256(flash).hexdigest() == device.image_sha256


def is_blank(board: DemoBoard) -> bool:
    """Whether the board's image range is still erased."""
    return set(board_image(board)) == {0xFF}
