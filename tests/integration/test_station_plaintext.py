"""No plaintext at rest: after a run no file holds a 16-byte window of template, image or key."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from station_fixtures import board_image, profile, served_site, site_devices, station

from provisioner.demo import virtual_boards
from provisioner.sim.firmware import bootloader_template
from provisioner.station.headless import run_headless

WINDOW = 16
MIN_DISTINCT = 6  # runs of fill bytes or zeros are in every file; they are not plaintext


def _windows(blob: bytes, *, min_distinct: int = MIN_DISTINCT) -> set[bytes]:
    return {blob[i:i + WINDOW] for i in range(len(blob) - WINDOW + 1)
            if len(set(blob[i:i + WINDOW])) >= min_distinct}


def _files(roots: Iterable[Path]) -> list[Path]:
    return [path for root in roots for path in root.rglob("*") if path.is_file()]


def _hits(path: Path, secrets: set[bytes]) -> int:
    data = path.read_bytes()
    return sum(data[i:i + WINDOW] in secrets for i in range(len(data) - WINDOW + 1))


def test_no_file_holds_template_image_or_key(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    private_tmp, work = tmp_path / "tmp", tmp_path / "work"
    private_tmp.mkdir()
    work.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.chdir(work)
    station_dir = tmp_path / "station"
    with served_site(tmp_path) as site:
        with station(site, station_dir, "station-scan") as runner:
            order_id = site.add_order(3)
            with virtual_boards(3) as boards:
                summary = run_headless(runner, order_id, {b.location: b.connect for b in boards},
                                       3, out=lambda line: None)
                assert summary.passed == 3
                images = [board_image(board) for board in boards]
        keys = [device.key for device in site_devices(site, order_id).values()]
        site_dir = site.site_dir
    layout = profile().patch_layout()
    template = bootloader_template(profile())
    plain = template.read(layout.image_start, layout.image_end - layout.image_start, 0xFF)
    secrets = _windows(bytes(plain))
    for image in images:
        secrets |= _windows(image)
    secrets |= set(keys)
    assert len(keys) == 3
    assert len(secrets) > 1000
    scanned = _files([station_dir, site_dir, work, private_tmp])
    assert any(path.name.startswith("journal") for path in scanned)
    assert any(path.suffix == ".db" for path in scanned)
    leaks = {str(path): n for path in scanned if (n := _hits(path, secrets))}
    assert leaks == {}
