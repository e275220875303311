"""``provisioner sim swd`` creates a virtual board the plugin lists."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner

from hw_profiles import load_profile
from provisioner.sim.swd_board import BoardStateError, ChipSpec, list_board_uids, load_board
from provisioner.sim.swd_commands import sim_swd_command


def test_creates_a_blank_board_with_the_given_uid(tmp_path: Path) -> None:
    result = CliRunner().invoke(sim_swd_command, [
        "--profile", "stm32f103c8", "--dir", str(tmp_path), "--probe-uid", "VSWD0007",
        "--chip-uid", "00112233445566778899aabb"])
    assert result.exit_code == 0, result.output
    assert "VSWD0007" in result.output
    assert f"PROVISIONER_VIRTUAL_PROBES={tmp_path.resolve()}" in result.output
    assert list_board_uids(tmp_path) == ["VSWD0007"]
    board = load_board(tmp_path, "VSWD0007")
    assert board.chip_uid == bytes.fromhex("00112233445566778899aabb")
    assert board.flash_bytes(0x08000000, 0x10000) == b"\xff" * 0x10000
    assert not board.flash.readout_protected


def test_random_uid_has_the_profile_size_and_existing_board_is_kept(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--profile", "stm32f103c8", "--dir", str(tmp_path)]
    assert runner.invoke(sim_swd_command, args).exit_code == 0
    state = json.loads((tmp_path / "VSWD0001.json").read_text())
    assert len(bytes.fromhex(state["chip_uid"])) == 12
    again = runner.invoke(sim_swd_command, args)
    assert again.exit_code != 0
    assert "--force" in again.output
    assert runner.invoke(sim_swd_command, [*args, "--force"]).exit_code == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--chip-uid", "0011"], "chip UID has 2 bytes"),
    (["--chip-uid", "zz"], "non-hexadecimal"),
    (["--probe-uid", "../evil"], "probe UID"),
    (["--profile", "no-such-board"], "no-such-board"),
])
def test_bad_input_is_a_clean_error(tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(sim_swd_command, [
        "--profile", "stm32f103c8", "--dir", str(tmp_path), *extra])
    assert result.exit_code == 1
    assert message in result.output
    assert list_board_uids(tmp_path) == []


def test_nrf52840_board_has_an_8_byte_deviceid_and_erased_uicr(tmp_path: Path) -> None:
    result = CliRunner().invoke(sim_swd_command, [
        "--profile", "nrf52840", "--dir", str(tmp_path), "--chip-uid", "0011223344556677"])
    assert result.exit_code == 0, result.output
    board = load_board(tmp_path, "VSWD0001")
    assert board.bus.read(0x10000060, 4) == 0x33221100  # FICR DEVICEID[0]
    assert board.flash.option_bytes == b"\xff" * 0x1000  # UICR: APPROTECT disabled
    assert not board.flash.readout_protected


@pytest.mark.parametrize(("mcu", "method"), [("STM32H743ZI", "stm32_option_bytes"),
                                             ("NRF5340", "nrf52_approtect"),
                                             ("STM32F103C8", "nrf52_approtect")])
def test_a_chip_without_an_emulation_is_refused(
        mcu: str, method: Literal["stm32_option_bytes", "nrf52_approtect"]) -> None:
    profile = load_profile("stm32f103c8")
    odd = replace(profile, mcu=mcu, readout_protection=replace(
        profile.readout_protection, method=method))
    with pytest.raises(BoardStateError, match=f"{mcu} is not emulated"):
        ChipSpec.from_profile(odd)
