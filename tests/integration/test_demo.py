"""`provisioner demo` headless: five boards, the production count and the audit chain."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from provisioner.demo import demo_command, run_demo


def test_demo_provisions_five_boards_and_verifies_the_chain(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_demo(work_dir=tmp_path, use_ui=False, out=lines.append) == 0, lines
    text = "\n".join(lines)
    assert sum(line.startswith("PASS ") for line in lines) == 5, text
    assert "production: 5 of 5 programmed" in text
    assert "hash chain and signatures verified" in text
    assert "summary: 5 passed, 0 failed of 5" in text


def test_demo_command_is_headless_without_a_tty() -> None:
    result = CliRunner().invoke(demo_command, [])
    assert result.exit_code == 0, result.output
    assert "production: 5 of 5 programmed" in result.output
