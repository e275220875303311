"""`provisioner flash --probe` reaches the SWD backend through the registry (virtual probe)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hex_generator import load
from provisioner.flash.commands import flash_group
from provisioner.sim.swd_board import create_virtual_board
from provisioner.sim.swd_probe import ENV_VAR, register_with_pyocd

PROBE = "VCLI0001"
UID = bytes.fromhex("0badc0ffee0123456789abcd")
ROOT = Path(__file__).resolve().parents[2]


def test_flash_cli_writes_and_reads_through_a_probe(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert register_with_pyocd()
    create_virtual_board(tmp_path, PROBE, "stm32f103c8", UID)
    base = ["--probe", PROBE, "--profile", "stm32f103c8"]
    runner = CliRunner()
    result = runner.invoke(flash_group, [*base, "info"])
    assert result.exit_code == 0, result.output
    assert UID.hex() in result.output
    hex_path = ROOT / "fixtures" / "stm32f103c8" / "application.hex"
    result = runner.invoke(flash_group, [*base, "write", str(hex_path)])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    out = tmp_path / "head.bin"
    app_start = load(hex_path).min_address  # slot A, after the bootloader region
    result = runner.invoke(flash_group, [*base, "read", f"0x{app_start:08X}", "64", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == bytes(load(hex_path).read(app_start, 64))
