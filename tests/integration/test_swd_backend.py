"""SwdBackend against the virtual STM32 and nRF52 boards, through pyOCD's session and flash API."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hex_generator import load
from hw_profiles import Profile, load_profile
from provisioner.errors import (
    AddressOutOfRange,
    ChipMismatch,
    LinkTimeout,
    ProbeError,
    ReadoutProtected,
    TargetOperationFailed,
    VerifyMismatch,
)
from provisioner.flash.backend import MemorySegment, Operation, ProgressEvent, opened
from provisioner.flash.swd import SwdBackend
from provisioner.sim.swd_board import create_virtual_board, set_faults, state_paths
from provisioner.sim.swd_dap import BoardFaults
from provisioner.sim.swd_probe import ENV_VAR, register_with_pyocd

PROBE = "VSWD0001"
UID = bytes.fromhex("34ff6e063052323830461543")
FLASH = 0x08000000


@pytest.fixture
def profile(request: pytest.FixtureRequest) -> Profile:
    """The STM32F103C8 unless a test asks for every emulated family."""
    return load_profile(getattr(request, "param", "stm32f103c8"))


EVERY_FAMILY = pytest.mark.parametrize(
    "profile", ["stm32f103c8", "stm32f411ce", "stm32l432kc", "nrf52840"], indirect=True)


@pytest.fixture
def board_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: Profile) -> Path:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert register_with_pyocd()
    create_virtual_board(tmp_path, PROBE, profile.name, UID[:profile.chip_uid.size_bytes])
    return tmp_path


@contextmanager
def connected(profile: Profile, probe: str = PROBE) -> Iterator[SwdBackend]:
    backend = SwdBackend(probe, profile)
    with opened(backend):
        yield backend


@pytest.fixture
def backend(board_dir: Path, profile: Profile) -> Iterator[SwdBackend]:
    with connected(profile) as backend:
        yield backend


def image_segments(base: int = FLASH) -> list[MemorySegment]:
    """A 40 KiB pseudo-random image in two segments with a gap (pages left erased)."""
    blob = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range(1280))
    return [MemorySegment(base, blob[:0x6000]), MemorySegment(base + 0x7000, blob[0x6000:])]


def fixture_segments(profile: Profile) -> list[MemorySegment]:
    """The profile's fixture bootloader and application, as the station would program them."""
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / profile.name
    image = load(fixtures / "bootloader.hex").merge(load(fixtures / "application.hex"))
    return [MemorySegment(segment.start, bytes(segment.data)) for segment in image.segments()]


def flash_file(board_dir: Path) -> bytes:
    return state_paths(board_dir, PROBE)[1].read_bytes()


@pytest.mark.parametrize("profile", ["stm32f103c8", "nrf52840"], indirect=True)
def test_uid_and_capabilities(backend: SwdBackend, profile: Profile) -> None:
    assert backend.read_uid() == UID[:profile.chip_uid.size_bytes]  # nRF52: FICR DEVICEID
    assert backend.location == PROBE
    assert backend.capabilities.readout_protection_levels == (0, 1)


@EVERY_FAMILY
def test_fixture_image_reads_back_identical_and_persists(board_dir: Path,
                                                         profile: Profile) -> None:
    events: list[ProgressEvent] = []
    segments = fixture_segments(profile)
    total = sum(len(segment.data) for segment in segments)
    with connected(profile) as backend:
        backend.erase(None)
        backend.program(segments, events.append)
        backend.verify(segments, events.append)
        for segment in segments:
            assert backend.read(segment.start, len(segment.data)) == segment.data
        end = segments[-1].end
        assert backend.read(end, 0x1000) == b"\xff" * 0x1000
    program = [e for e in events if e.operation is Operation.program]
    assert program[-1].done_bytes == program[-1].total_bytes == total
    assert [e for e in events if e.operation is Operation.verify][-1].done_bytes == total
    stored = flash_file(board_dir)  # the board wrote its flash back when the probe closed
    base = profile.flash.base
    for segment in segments:
        assert stored[segment.start - base:segment.end - base] == segment.data


@EVERY_FAMILY
def test_two_segments_with_a_gap_leave_the_gap_erased(backend: SwdBackend,
                                                      profile: Profile) -> None:
    base = profile.flash.base
    segments = image_segments(base)
    backend.erase(None)
    backend.program(segments)
    backend.verify(segments)
    assert backend.read(base + 0x6000, 0x1000) == b"\xff" * 0x1000


@EVERY_FAMILY
def test_verify_names_the_first_flipped_byte(board_dir: Path, profile: Profile) -> None:
    segments = fixture_segments(profile)
    with connected(profile) as backend:
        backend.erase(None)
        backend.program(segments)
    path = state_paths(board_dir, PROBE)[1]
    flash = bytearray(path.read_bytes())
    flash[0x3123] ^= 0x10  # inside the application
    flash[0x4000] ^= 0x01
    path.write_bytes(flash)
    base = profile.flash.base
    with connected(profile) as backend:
        backend.verify([MemorySegment(base, segments[0].data[:0x3000])])
        with pytest.raises(VerifyMismatch) as caught:
            backend.verify(segments)
    assert caught.value.address == base + 0x3123
    assert caught.value.found == caught.value.expected ^ 0x10
    assert f"0x{base + 0x3123:08X}" in str(caught.value)


@EVERY_FAMILY
def test_sector_erase_touches_only_covered_sectors(backend: SwdBackend,
                                                    profile: Profile) -> None:
    base = profile.flash.base
    image = bytearray(b"\xff" * 0xB000)
    for segment in image_segments(base):
        image[segment.start - base:segment.end - base] = segment.data
    backend.erase(None)
    backend.program(image_segments(base))
    start, size = profile.flash.sectors[1]  # 1 KiB (F1), 16 KiB (F4), 2 KiB (L4), 4 KiB (nRF52)
    backend.erase([(start + 1, start + 2)])
    image[start - base:start - base + size] = b"\xff" * size
    assert backend.read(base, len(image)) == image


@EVERY_FAMILY
def test_protect_refuses_reads_and_unprotect_mass_erases(board_dir: Path,
                                                          profile: Profile) -> None:
    base = profile.flash.base
    with connected(profile) as backend:
        backend.program(image_segments(base))
        backend.protect(1)
        assert backend.is_readout_protected()
        with pytest.raises(ReadoutProtected):
            backend.read(base, 16)
        with pytest.raises(ReadoutProtected):
            backend.verify(image_segments(base))
        with pytest.raises(ReadoutProtected, match="erase"):
            backend.erase(None)
        with pytest.raises(ReadoutProtected, match="program"):
            backend.program(image_segments(base))
        if profile.readout_protection.method == "nrf52_approtect":
            with pytest.raises(ReadoutProtected, match="UID"):  # APPROTECT hides FICR too
                backend.read_uid()
        else:
            assert backend.read_uid() == UID
    with connected(profile) as backend:  # survives a power cycle
        assert backend.is_readout_protected()
        backend.protect(0)
        assert not backend.is_readout_protected()
        assert backend.read(base, profile.flash.size_bytes) == b"\xff" * profile.flash.size_bytes
    assert flash_file(board_dir) == b"\xff" * profile.flash.size_bytes


@EVERY_FAMILY
def test_out_of_range_is_refused_before_touching_the_chip(backend: SwdBackend,
                                                           profile: Profile) -> None:
    with pytest.raises(AddressOutOfRange):
        backend.read(profile.flash.base + profile.flash.size_bytes - 0x10, 0x20)
    with pytest.raises(AddressOutOfRange):
        backend.program([MemorySegment(0x20000000, b"\x00" * 4)])


def test_unknown_probe_is_a_probe_error(board_dir: Path, profile: Profile) -> None:
    with pytest.raises(ProbeError, match="VSWD9999"):
        SwdBackend("VSWD9999", profile).open()


def test_bus_fault_names_address_and_board_recovers(board_dir: Path, profile: Profile) -> None:
    segments = image_segments()
    set_faults(board_dir, PROBE, BoardFaults(fault_address=FLASH + 0x1000))
    with connected(profile) as backend:
        backend.program(segments)  # the algorithm writes through the core, not the AP
        with pytest.raises(TargetOperationFailed) as caught:
            backend.verify(segments)
    assert caught.value.address == FLASH + 0x1000
    assert "0x08001000" in str(caught.value)
    set_faults(board_dir, PROBE, BoardFaults())
    with connected(profile) as backend:
        backend.verify(segments)


def test_stall_is_a_link_timeout_and_board_recovers(board_dir: Path, profile: Profile) -> None:
    set_faults(board_dir, PROBE, BoardFaults(stall_address=FLASH + 0x20))
    with connected(profile) as backend:
        assert backend.read_uid() == UID
        with pytest.raises(LinkTimeout) as caught:
            backend.read(FLASH, 64)
    assert caught.value.command == "read"
    assert "SWD WAIT" in str(caught.value)
    set_faults(board_dir, PROBE, BoardFaults())
    with connected(profile) as backend:
        assert backend.read(FLASH, 64) == b"\xff" * 64


def test_dead_link_fails_open_with_a_specific_error(board_dir: Path, profile: Profile) -> None:
    set_faults(board_dir, PROBE, BoardFaults(no_target=True))
    with pytest.raises(ProbeError, match=r"open: .*Target not detected"):
        SwdBackend(PROBE, profile).open()
    set_faults(board_dir, PROBE, BoardFaults())
    with connected(profile) as backend:
        assert backend.read_uid() == UID


@EVERY_FAMILY
def test_link_lost_mid_program_then_next_run_recovers(board_dir: Path, profile: Profile) -> None:
    segments = image_segments(profile.flash.base)
    set_faults(board_dir, PROBE, BoardFaults(stall_after_transfers=6000))
    with connected(profile) as backend:
        backend.erase(None)
        with pytest.raises(LinkTimeout):
            backend.program(segments)
    written = flash_file(board_dir)[:0xA000]
    assert written != b"\xff" * 0xA000  # partly programmed ...
    assert written[:0x6000] != segments[0].data  # ... but not completely
    set_faults(board_dir, PROBE, BoardFaults())
    with connected(profile) as backend:
        backend.erase(None)
        backend.program(segments)
        backend.verify(segments)


def test_a_board_serves_one_session_at_a_time(board_dir: Path, profile: Profile) -> None:
    with connected(profile), pytest.raises(ProbeError, match="in use"):
        SwdBackend(PROBE, profile).open()
    with connected(profile) as backend:  # released on close
        assert backend.read_uid() == UID


def test_listing_needs_the_explicit_setting(board_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from provisioner.sim.virtual_probe import VirtualProbe

    assert [p.unique_id for p in VirtualProbe.get_all_connected_probes()] == [PROBE]
    monkeypatch.delenv(ENV_VAR)
    assert VirtualProbe.get_all_connected_probes() == []
    assert VirtualProbe.get_probe_with_id(PROBE) is None
    assert not register_with_pyocd()


@EVERY_FAMILY
def test_power_loss_leaves_a_partly_written_page_and_next_run_recovers(
        board_dir: Path, profile: Profile) -> None:
    segments = image_segments(profile.flash.base)
    set_faults(board_dir, PROBE, BoardFaults(power_loss_after_bytes=0x1238))
    with connected(profile) as backend:
        backend.erase(None)
        with pytest.raises(LinkTimeout, match="no SWD ACK"):
            backend.program(segments)
    flash = flash_file(board_dir)
    assert flash[:0x1238] == segments[0].data[:0x1238]  # written up to the moment power failed
    assert flash[0x1238:0x1400] == b"\xff" * (0x1400 - 0x1238)  # rest of that page never written
    with connected(profile) as backend:  # power is back: the fault was one-shot
        backend.erase(None)
        backend.program(segments)
        backend.verify(segments)


@EVERY_FAMILY
def test_unaligned_segment_is_padded_with_erased_bytes(backend: SwdBackend,
                                                       profile: Profile) -> None:
    base = profile.flash.base
    segments = [MemorySegment(base + 0x101, b"\x12\x34\x56"),
                MemorySegment(base + 0x180, b"\xab" * 8)]  # same page, programmed once
    backend.erase(None)
    backend.program(segments)
    backend.verify(segments)
    assert backend.read(base + 0xFC, 12) == bytes.fromhex("ffffffffff123456ffffffff")
    assert backend.read(base, 0x100) == b"\xff" * 0x100
    assert backend.read(base + 0x188, 0x100) == b"\xff" * 0x100


@pytest.mark.parametrize("profile", ["stm32f411ce"], indirect=True)
def test_a_board_of_another_stm32_is_refused_with_both_dev_ids(board_dir: Path) -> None:
    backend = SwdBackend(PROBE, load_profile("stm32f103c8"))  # an F103 profile, an F411 board
    with pytest.raises(ChipMismatch) as exc:
        backend.open()
    assert (exc.value.expected_pid, exc.value.found_pid) == (0x410, 0x431)
    backend.close()
    with connected(load_profile("stm32f411ce")) as right:  # the probe was released
        assert right.read_uid() == UID


def test_pyocd_warnings_reach_our_logger_not_the_terminal(
        board_dir: Path, profile: Profile, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="provisioner.flash.pyocd")
    logging.getLogger("pyocd").setLevel(logging.NOTSET)  # whatever an earlier test left
    with connected(profile) as backend:  # a blank chip: pyOCD warns about its vector table
        backend.read_uid()
        logging.getLogger("pyocd.coresight.cortex_m").warning("\x1b[33mT bit in XPSR\x1b[0m")
    out, err = capfd.readouterr()
    assert "XPSR" not in out + err
    assert "\x1b[" not in out + err
    forwarded = [r.getMessage() for r in caplog.records if r.name == "provisioner.flash.pyocd"]
    assert any("T bit in XPSR" in text and "\x1b" not in text for text in forwarded)


@pytest.mark.parametrize("profile", ["nrf52840"], indirect=True)
def test_an_nrf52_of_another_part_is_refused_by_its_ficr_part_number(
        board_dir: Path, profile: Profile) -> None:
    other_part = dataclasses.replace(profile, mcu="NRF52833")  # the board is an nRF52840
    backend = SwdBackend(PROBE, other_part)
    with pytest.raises(ChipMismatch) as exc:
        backend.open()
    assert (exc.value.expected_pid, exc.value.found_pid) == (0x52833, 0x52840)
    backend.close()
    with connected(profile) as right:  # the probe was released
        assert right.read_uid() == UID[:profile.chip_uid.size_bytes]
