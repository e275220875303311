"""Shared helpers for the field-update tests: a site with its update listener, provisioned
virtual SWD boards, the reference device and the relay."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from station_fixtures import STATION_PASSPHRASE, TEST_SCRYPT_N, site_devices

from provisioner.crypto.signing import VerifyKey
from provisioner.demo import DEMO_PRODUCT, DemoSite, demo_site, virtual_boards
from provisioner.relay.site_updates import UpdateSite
from provisioner.sim.device.device import ReferenceDevice, Signed, board_paths
from provisioner.sim.firmware import pseudo_code, vector_table
from provisioner.site.db.models import AuditRow, UpdateDelivery
from provisioner.site.server import SiteServer, run_in_thread
from provisioner.site.sitedir import SiteDir
from provisioner.site.updates import releases
from provisioner.station.unlock import open_station

PROFILE = "stm32f103c8"
PROVISIONER = str(Path(sys.executable).parent / "provisioner")


@dataclass
class UpdateWorld:
    """A served site (station API + update listener), its station, and a board directory."""

    site: DemoSite
    updates: SiteServer
    board_dir: Path
    key_path: Path
    order_id: str

    @property
    def ca_path(self) -> Path:
        """The site CA certificate."""
        return SiteDir(self.site.site_dir).ca_cert

    @property
    def verify_key(self) -> VerifyKey:
        """The manufacturer's public key."""
        return VerifyKey.from_pem(self.key_path.read_bytes())

    def client(self) -> UpdateSite:
        """A relay-side client of the update listener."""
        return UpdateSite(self.updates.url, self.ca_path)

    def ask(self, signed: Signed) -> tuple[int, bytes]:
        """Carry one signed device request to the site; return (delivery ID, package)."""
        site = self.client()
        try:
            return site.request_update(signed.body, signed.mac)
        finally:
            site.close()

    def device(self, probe_uid: str, **kwargs: object) -> ReferenceDevice:
        """The reference device on a board (booted)."""
        device = ReferenceDevice.open_board(self.board_dir, probe_uid, self.verify_key,
                                            **kwargs)  # type: ignore[arg-type]
        device.boot()
        return device

    def add_release(self, version: str, image: bytes, **kwargs: str) -> None:
        """Store a release of the demo product."""
        path = self.board_dir.parent / f"release-{version}.bin"
        path.write_bytes(image)
        releases.add_release(self.updates.context, path, product=DEMO_PRODUCT,
                             version=version, **kwargs)
        path.unlink()

    def deliveries(self) -> int:
        """Rows in update_deliveries."""
        with self.updates.context.factory() as session:
            return int(session.scalar(select(func.count()).select_from(UpdateDelivery)) or 0)

    def audit(self, event: str) -> list[dict[str, object]]:
        """Data of every audit entry of ``event``."""
        with self.updates.context.factory() as session:
            rows = session.scalars(select(AuditRow).where(AuditRow.event == event)
                                   .order_by(AuditRow.seq))
            return [json.loads(row.data) for row in rows]

    def device_key(self, chip_uid: bytes) -> bytes:
        """The site's key of a provisioned chip (ground truth the test compares with)."""
        return site_devices(self.site, self.order_id)[chip_uid.hex()].key


def app_image(label: str, size_bytes: int = 6 * 1024) -> bytes:
    """A plausible application: a valid vector table then code-like bytes."""
    from hw_profiles import load_profile

    profile = load_profile(PROFILE)
    assert profile.update is not None
    base = profile.update.slots[0].base
    table = vector_table(profile, base + 256, base + size_bytes)
    return table + pseudo_code(label, size_bytes - len(table))


@contextmanager
def update_world(work: Path, boards: int, *, db_url: str | None = None,
                 rate_per_s: float = 1000.0) -> Iterator[tuple[UpdateWorld, list[bytes]]]:
    """Serve a site, provision ``boards`` virtual SWD boards with the real station flow.

    Yields the world and the boards' chip UIDs (probe UIDs VSWD0000, VSWD0001, ...).
    """
    board_dir = work / "boards"
    with demo_site(work, scrypt_n=TEST_SCRYPT_N, db_url=db_url) as site, \
            virtual_boards(0, swd_count=boards, swd_dir=board_dir) as made:
        assert len(made) == boards, "the virtual SWD probe plugin did not load in pyOCD"
        site.enrol_station(work / "station", "station-1", STATION_PASSPHRASE)
        order_id = site.add_order(boards + 2)
        runner = open_station(work / "station", STATION_PASSPHRASE)
        try:
            runner.sign_in(site.operator_id, site.pin)
            for board in made:
                result = runner.provision_board(order_id, board.location, board.connect,
                                                lambda _e: None)
                assert result.passed, result
        finally:
            runner.close()
        updates = run_in_thread(site.site_dir, updates=True, rate_per_s=rate_per_s,
                                db_url=db_url)
        try:
            key_path = work / "manufacturer.pem"
            key_path.write_bytes(updates.context.signer.verify_key.to_pem())
            yield (UpdateWorld(site, updates, board_dir, key_path, order_id),
                   [board.chip_uid for board in made])
        finally:
            updates.stop()


def clone_board(board_dir: Path, source_uid: str, clone_uid: str, chip_uid: bytes) -> None:
    """Copy a board's flash onto a second virtual board with another chip UID."""
    src_state, src_flash = board_paths(board_dir, source_uid)
    state = json.loads(src_state.read_text())
    state["chip_uid"] = chip_uid.hex()
    dst_state, dst_flash = board_paths(board_dir, clone_uid)
    dst_state.write_text(json.dumps(state))
    shutil.copyfile(src_flash, dst_flash)


@contextmanager
def device_process(world: UpdateWorld, probe_uid: str, *extra: str) -> Iterator[
        tuple[subprocess.Popen[bytes], str]]:
    """`provisioner sim device serve` in its own process; yields it and its pty path."""
    process = subprocess.Popen(
        [PROVISIONER, "sim", "device", "serve",
         "--dir", str(world.board_dir), "--probe-uid", probe_uid,
         "--manufacturer-key", str(world.key_path), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        assert port.startswith("/dev/"), process.stderr.read() if process.stderr else port
        yield process, port
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


def relay(world: UpdateWorld, port: str, cwd: Path,
          site_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`provisioner device update` in its own process (it holds no key), to ``site_url``
    (default: the update listener itself)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [PROVISIONER, "device", "update", "--port", port,
         "--site", site_url or world.updates.url, "--ca", str(world.ca_path)],
        capture_output=True, text=True, timeout=120, cwd=cwd, env=env, check=False)
