"""The C reference bootloader, provisioned by the real station flow, boots in the emulator.

Ground truth: the site's device rows (device ID, key) and the CRC the profile names; the
bootloader's own words on USART1 are what the tests read.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from station_fixtures import profile, served_site, site_devices, station

from hex_generator.checksums import crc32_stm32
from provisioner.demo import DEMO_PRODUCT, DEMO_PROFILE, virtual_boards
from provisioner.sim.boot_runner import BootResult, UsartPty, board_from_flash, run_board
from provisioner.sim.commands import sim_group
from provisioner.sim.firmware import render
from provisioner.sim.swd_board import load_board
from provisioner.site import catalogue

BOOTED = b"running\r\n"  # the demo application's first line
BUDGET = 2_000_000  # instructions: a boot to the application takes about 40 000


@dataclass(frozen=True)
class Provisioned:
    """One board after the station flow: its flash, chip UID and the ID the site granted."""

    flash: bytes
    chip_uid: bytes
    device_id: int
    swd_dir: Path | None
    probe_uid: str


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Provisioned]]:
    work = tmp_path_factory.mktemp("bootloader-boot")
    flash = profile().flash
    with served_site(work) as site, station(site, work / "station", "boot-test") as runner:
        ctx = site.server.context  # the demo product plus its slot A application
        app_path = work / "owner-application.hex"
        app_path.write_text(render(profile())["application.hex"], encoding="ascii")
        catalogue.add_firmware(ctx, app_path, kind=catalogue.FirmwareKind.application,
                               product=DEMO_PRODUCT, version="1.0.0")
        order_id = catalogue.create_order(ctx, product=DEMO_PRODUCT, profile=DEMO_PROFILE,
                                          quantity=2, bootloader="1.0.0", application="1.0.0")
        with virtual_boards(1, swd_count=1, swd_dir=work / "swd") as boards:
            for board in boards:
                result = runner.provision_board(order_id, board.location, board.connect,
                                                lambda event: None)
                assert result.passed, result
            devices = site_devices(site, order_id)
            yield [Provisioned(board.flash(flash.base, flash.size_bytes), board.chip_uid,
                               devices[board.chip_uid.hex()].device_id,
                               work / "swd" if i == 1 else None, board.location)
                   for i, board in enumerate(boards)]


def boot(flash: bytes, chip_uid: bytes) -> BootResult:
    return run_board(board_from_flash(DEMO_PROFILE, flash, chip_uid), max_instructions=BUDGET,
                     until=BOOTED)


def with_crc(flash: bytearray) -> bytes:
    """Recompute the bootloader checksum the way the station does (profile's CRC unit)."""
    spec = profile().patch_layout().checksum
    assert spec is not None
    crc = crc32_stm32(flash[spec.start - 0x08000000:spec.end - 0x08000000])
    at = spec.location - 0x08000000
    flash[at:at + spec.size_bytes] = crc.to_bytes(spec.size_bytes, spec.byteorder)
    return bytes(flash)


def erase(flash: bytearray, address: int, size_bytes: int) -> None:
    """Put ``size_bytes`` of erased flash (0xFF, the zones' placeholder) at ``address``."""
    at = address - 0x08000000
    flash[at:at + size_bytes] = b"\xff" * size_bytes


def test_each_provisioned_board_boots_and_prints_the_device_id_the_site_granted(
        provisioned: list[Provisioned]) -> None:
    assert len({board.device_id for board in provisioned}) == len(provisioned)
    for board in provisioned:
        result = boot(board.flash, board.chip_uid)
        assert result.stopped == "pattern", result.text
        assert result.text.splitlines() == [
            f"provisioner-bootloader 1.0.0 device_id {board.device_id} "
            f"(0x{board.device_id:08X})",
            "booting slot A at 0x08006000",
            "application 1.0.0 running",
        ]


def test_sim_boot_command_shows_the_swd_board_booting(provisioned: list[Provisioned]) -> None:
    swd = next(board for board in provisioned if board.swd_dir is not None)
    assert swd.swd_dir is not None
    result = CliRunner().invoke(sim_group, ["boot", "--dir", str(swd.swd_dir), "--probe-uid",
                                            swd.probe_uid, "--seconds", "3"])
    assert result.exit_code == 0, result.output
    assert f"device_id {swd.device_id} " in result.output
    assert "application 1.0.0 running" in result.output
    reloaded = load_board(swd.swd_dir, swd.probe_uid)  # saved: a boot event more in the log
    assert reloaded.flash_bytes(0x08000000, 0xF000) == swd.flash[:0xF000]  # up to boot state
    assert reloaded.flash_bytes(0x0800F800, 0x800) != swd.flash[0xF800:]  # event log grew


def test_an_unpatched_key_zone_refuses_to_boot_and_says_why(
        provisioned: list[Provisioned]) -> None:
    board = provisioned[0]
    flash = bytearray(board.flash)
    erase(flash, profile().key_zone.address, profile().key_zone.size_bytes)  # CRC made valid
    result = boot(with_crc(flash), board.chip_uid)
    assert result.text == "BOOT REFUSED: key zone not provisioned\r\n"
    assert result.stopped == "budget"  # parked: it never jumps to the application


def test_a_wrong_checksum_refuses_to_boot_naming_both_values(
        provisioned: list[Provisioned]) -> None:
    board = provisioned[0]
    flash = bytearray(board.flash)
    flash[0x1000] ^= 0x01  # one bit of the bootloader's code
    spec = profile().patch_layout().checksum
    assert spec is not None
    computed = crc32_stm32(flash[spec.start - 0x08000000:spec.end - 0x08000000])
    stored = int.from_bytes(board.flash[spec.location - 0x08000000:][:4], "little")
    result = boot(bytes(flash), board.chip_uid)
    assert result.text == (f"bootloader CRC 0x{computed:08X}, stored 0x{stored:08X}\r\n"
                           "BOOT REFUSED: bootloader checksum mismatch\r\n")


def test_an_unprogrammed_template_refuses_on_its_checksum(
        provisioned: list[Provisioned]) -> None:
    flash = bytearray(provisioned[0].flash)
    layout = profile().patch_layout()
    for zone in (layout.id_zone, layout.key_zone):
        erase(flash, zone.address, zone.size_bytes)
    spec = layout.checksum
    assert spec is not None
    erase(flash, spec.location, spec.size_bytes)
    result = boot(bytes(flash), provisioned[0].chip_uid)
    assert "stored 0xFFFFFFFF" in result.text
    assert result.text.endswith("BOOT REFUSED: bootloader checksum mismatch\r\n")


def test_a_blank_device_id_with_a_valid_checksum_refuses(
        provisioned: list[Provisioned]) -> None:
    flash = bytearray(provisioned[0].flash)
    erase(flash, profile().id_zone.address, profile().id_zone.size_bytes)
    result = boot(with_crc(flash), provisioned[0].chip_uid)
    assert result.text == "BOOT REFUSED: device ID zone not provisioned\r\n"


def test_an_erased_application_slot_is_not_booted(provisioned: list[Provisioned]) -> None:
    board = provisioned[0]
    flash = bytearray(board.flash)
    erase(flash, 0x08006000, 0x4800)  # slot A
    result = boot(bytes(flash), board.chip_uid)
    assert result.text.splitlines()[1:] == ["slot A: slot is erased",
                                            "BOOT REFUSED: no bootable application"]


def test_usart1_bridged_to_a_pty_carries_the_banner_and_the_application(
        provisioned: list[Provisioned]) -> None:
    board = board_from_flash(DEMO_PROFILE, provisioned[0].flash, provisioned[0].chip_uid)
    assert board.peripherals is not None
    bridge = UsartPty(board.peripherals.usart1)
    reader = os.open(bridge.port, os.O_RDONLY | os.O_NOCTTY)
    try:
        run_board(board, max_instructions=BUDGET, until=BOOTED)
        received = b""
        while BOOTED not in received and select.select([reader], [], [], 2.0)[0]:
            received += os.read(reader, 4096)
    finally:
        os.close(reader)
        bridge.close()
    assert received.decode().splitlines()[0] == (
        f"provisioner-bootloader 1.0.0 device_id {provisioned[0].device_id} "
        f"(0x{provisioned[0].device_id:08X})")
    assert received.endswith(b"application 1.0.0 running\r\n")
