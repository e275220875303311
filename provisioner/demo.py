"""`provisioner demo`: a throw-away TLS site, an enrolled station and virtual boards, end to end."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provisioner.crypto.secret_policy import MIN_PIN_CHARS, weakness
from provisioner.flash.backend import FlashBackend

if TYPE_CHECKING:
    from hw_profiles import Profile
    from provisioner.sim.faults import BoardFaults
    from provisioner.site.server import SiteServer

DEMO_PROFILE = "stm32f103c8"
DEMO_PRODUCT = "demo-widget"
DEMO_OPERATOR = "operator-1"
DEMO_QUANTITY = 5


@dataclass(frozen=True, slots=True)
class DemoBoard:
    """One virtual board: where it is attached, how to reach it, a view of its flash, and a
    way to swap in a new blank chip behind the same port/probe (returns its chip UID)."""

    location: str
    chip_uid: bytes
    connect: Callable[[Profile], FlashBackend]
    flash: Callable[[int, int], bytes]
    swap_chip: Callable[[], bytes]

    def factory(self) -> FlashBackend:
        """The board's backend with the demo profile (for tests that drive a backend)."""
        from hw_profiles import load_profile

        return self.connect(load_profile(DEMO_PROFILE))


@dataclass
class DemoSite:
    """A throw-away site served over TLS on 127.0.0.1 with one operator and one template."""

    site_dir: Path
    server: SiteServer
    operator_id: str
    pin: str
    scrypt_n: int

    @property
    def url(self) -> str:
        """The site's https base URL."""
        return self.server.url

    def add_order(self, quantity: int, stations: tuple[str, ...] = ()) -> str:
        """Open an order of ``quantity`` units of the demo product; return its id."""
        from provisioner.site import catalogue

        return catalogue.create_order(self.server.context, product=DEMO_PRODUCT,
                                      profile=DEMO_PROFILE, quantity=quantity,
                                      bootloader="1.0.0", stations=stations)

    def enrol_station(self, station_dir: Path, station_id: str, passphrase: str) -> None:
        """Create a station at the site and enrol ``station_dir`` from its sealed bundle."""
        from provisioner.site import admin
        from provisioner.station.enrolment import enroll

        enrolment = admin.add_station(self.server.context, self.site_dir, station_id, self.url,
                                      scrypt_n=self.scrypt_n)
        enroll(enrolment.bundle_path, enrolment.passphrase, passphrase, station_dir,
               scrypt_n=self.scrypt_n)


@contextmanager
def demo_site(work_dir: Path, *, scrypt_n: int = 2**15,
              db_url: str | None = None) -> Iterator[DemoSite]:
    """Initialise a site in ``work_dir / "site"`` (SQLite unless ``db_url``), serve it, add an
    operator and the template."""
    from hw_profiles import load_profile
    from provisioner.sim.firmware import render
    from provisioner.site import admin, catalogue
    from provisioner.site.server import run_in_thread

    site_dir = work_dir / "site"
    admin.init_site(site_dir, site_name="demo", hosts=("127.0.0.1",), db_url=db_url)
    # The owner's template, as the firmware team would hand it to the site admin.
    template_path = work_dir / "owner" / "bootloader.hex"
    template_path.parent.mkdir(mode=0o700)
    template_path.write_text(render(load_profile(DEMO_PROFILE))["bootloader.hex"],
                             encoding="ascii")
    server = run_in_thread(site_dir)
    try:
        pin = f"{secrets.randbelow(10**6):06d}"
        while weakness(pin, min_chars=MIN_PIN_CHARS) is not None:  # 123456 is no PIN
            pin = f"{secrets.randbelow(10**6):06d}"
        admin.add_operator(server.context, DEMO_OPERATOR, pin)
        catalogue.add_firmware(
            server.context, template_path,
            kind=catalogue.FirmwareKind.bootloader_template, product=DEMO_PRODUCT,
            version="1.0.0", profile=DEMO_PROFILE,
        )
        yield DemoSite(site_dir, server, DEMO_OPERATOR, pin, scrypt_n)
    finally:
        server.stop()


def _swd_boards(board_dir: Path, profile: Profile, count: int) -> list[DemoBoard]:
    """Create virtual SWD boards and make pyOCD see them; [] when the probe plugin is missing."""
    from provisioner.flash.swd import SwdBackend
    from provisioner.sim.swd_board import create_virtual_board, replace_chip, state_paths
    from provisioner.sim.swd_probe import ENV_VAR, register_with_pyocd

    os.environ[ENV_VAR] = str(board_dir)
    if not register_with_pyocd():
        return []
    boards = []
    for number in range(count):
        probe_uid = f"VSWD{number:04d}"
        chip_uid = secrets.token_bytes(profile.chip_uid.size_bytes)
        create_virtual_board(board_dir, probe_uid, profile.name, chip_uid)
        flash_path = state_paths(board_dir, probe_uid)[1]

        def flash(address: int, size: int, path: Path = flash_path) -> bytes:
            offset = address - profile.flash.base
            return path.read_bytes()[offset:offset + size]

        def swap(probe_uid: str = probe_uid) -> bytes:
            return replace_chip(board_dir, probe_uid)

        boards.append(DemoBoard(probe_uid, chip_uid, partial(SwdBackend, probe_uid), flash,
                                swap))
    return boards


@contextmanager
def virtual_boards(
    count: int,
    *,
    swd_count: int = 0,
    swd_dir: Path | None = None,
    faults: dict[int, BoardFaults] | None = None,
    chip_uids: list[bytes] | None = None,
) -> Iterator[list[DemoBoard]]:
    """Start ``count`` AN3155 boards on ptys, plus SWD boards when the probe plugin loads.

    ``faults`` maps a serial board's number to the faults its emulator injects; ``chip_uids``
    fixes the first boards' chip UIDs (random otherwise).
    """
    from hw_profiles import load_profile

    profile = load_profile(DEMO_PROFILE)
    fixed = chip_uids or []
    boards: list[DemoBoard] = []
    with ExitStack() as stack:
        for number in range(count):
            from provisioner.flash.serial_rom.backend import SerialRomBackend
            from provisioner.sim.an3155_board import VirtualSerialBoard

            chip_uid = (fixed[number] if number < len(fixed)
                        else secrets.token_bytes(profile.chip_uid.size_bytes))
            board_faults = (faults or {}).get(number)
            board = VirtualSerialBoard(profile, chip_uid=chip_uid, faults=board_faults)
            port = board.start()
            stack.callback(board.stop)
            boards.append(DemoBoard(port, chip_uid, partial(SerialRomBackend, port),
                                    board.flash_bytes, board.replace_chip))
        if swd_count and swd_dir is not None:
            boards.extend(_swd_boards(swd_dir, profile, swd_count))
        yield boards


def run_demo(*, work_dir: Path, use_ui: bool, out: Callable[[str], None] = click.echo) -> int:
    """Run the whole demo; return 0 when every board passed and the audit chain verifies."""
    from provisioner.process import disable_core_dumps
    from provisioner.site import admin, catalogue
    from provisioner.station.headless import run_headless
    from provisioner.station.unlock import open_station

    disable_core_dumps()
    started = time.monotonic()
    passphrase = secrets.token_urlsafe(16)
    with demo_site(work_dir) as site, virtual_boards(
        DEMO_QUANTITY - 1, swd_count=1, swd_dir=work_dir / "swd-boards"
    ) as boards:
        station_dir = work_dir / "station"
        site.enrol_station(station_dir, "station-1", passphrase)
        order_id = site.add_order(DEMO_QUANTITY)
        factories = {board.location: board.connect for board in boards}
        out(f"site {site.url} (TLS, SQLite); order {order_id}: "
            f"{DEMO_QUANTITY} x {DEMO_PROFILE}; boards: {', '.join(factories)}")
        runner = open_station(station_dir, passphrase)
        try:
            runner.sign_in(site.operator_id, site.pin)
            if use_ui:
                from provisioner.station.ui.app import run_ui

                code = run_ui(runner, factories, signed_in_as=site.operator_id)
            else:
                summary = run_headless(runner, order_id, factories, len(factories), out=out)
                code = 1 if summary.failed else 0
        finally:
            runner.close()
        order = catalogue.show_order(site.server.context, order_id)
        out(f"production: {order.produced} of {order.authorised_quantity} programmed")
        entries = admin.verify_audit(site.server.context)
        out(f"audit chain: {entries} entries, hash chain and signatures verified")
    out(f"demo finished in {time.monotonic() - started:.1f} s")
    return code


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep the demo's temporary directory.")
@click.option("--headless/--ui", default=None, help="Force the mode (default: UI on a TTY).")
def demo_command(keep: bool, headless: bool | None) -> None:
    """Run a throw-away site and station and provision 5 virtual boards."""
    work_dir = Path(tempfile.mkdtemp(prefix="provisioner-demo-"))
    use_ui = sys.stdout.isatty() if headless is None else not headless
    try:
        code = run_demo(work_dir=work_dir, use_ui=use_ui)
    finally:
        if keep:
            click.echo(f"kept {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    sys.exit(code)
