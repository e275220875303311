"""``provisioner sim swd`` creates a virtual board the plugin lists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.sim.swd_board import list_board_uids, load_board
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
    (["--profile", "nrf52840"], "NRF52840 is not emulated"),
    (["--profile", "no-such-board"], "no-such-board"),
])
def test_bad_input_is_a_clean_error(tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(sim_swd_command, [
        "--profile", "stm32f103c8", "--dir", str(tmp_path), *extra])
    assert result.exit_code == 1
    assert message in result.output
    assert list_board_uids(tmp_path) == []
