"""srec_cat (Debian srecord) agrees with our conversions and with our CRCs over a range."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hex_generator import (
    Image,
    emit_ihex,
    emit_srec,
    load,
    parse_binary,
    parse_ihex,
    parse_srec,
    patch,
)
from hex_generator.checksums import crc32_iso_hdlc, crc32_stm32
from hw_profiles import list_profiles, load_profile

SREC_CAT = shutil.which("srec_cat")
FIRMWARE = Path(__file__).parents[2].parent / "shared" / "firmware"
FIXTURES = Path(__file__).parents[2] / "fixtures"
pytestmark = pytest.mark.skipif(
    SREC_CAT is None, reason="srec_cat not found: install the Debian package srecord"
)


def srec_cat(*args: str) -> str:
    assert SREC_CAT is not None
    done = subprocess.run([SREC_CAT, *args], capture_output=True, text=True, check=True)
    return done.stdout


def segments(image: Image) -> list[tuple[int, bytes]]:
    return [(s.start, bytes(s.data)) for s in image.segments()]


def sample_images() -> list[Path]:
    names = ["stm32f103_bluepill_baremetal.hex", "nrf51_microbit_v1_micropython_1.1.1.hex",
             "psoc5lp_servo_s90.hex", "m68hc11_laser_project.s19"]  # fmt: skip
    found = [FIRMWARE / n for n in names if (FIRMWARE / n).is_file()]
    return [*found, FIXTURES / "stm32f411ce" / "application.hex"]


@pytest.mark.parametrize("path", sample_images(), ids=lambda p: p.name)
def test_srec_cat_converts_our_output_to_the_same_data(path: Path, tmp_path: Path) -> None:
    image = load(path)
    ours_hex = tmp_path / "ours.hex"
    ours_hex.write_text(emit_ihex(image, 32))
    as_srec = srec_cat(str(ours_hex), "-Intel", "-o", "-", "-Motorola", "-disable=header")
    assert segments(parse_srec(as_srec)) == segments(image)
    ours_srec = tmp_path / "ours.s19"
    ours_srec.write_text(emit_srec(image))
    as_hex = srec_cat(str(ours_srec), "-Motorola", "-o", "-", "-Intel")
    assert segments(parse_ihex(as_hex)) == segments(image)


@pytest.mark.parametrize("size", [4, 64, 1020, 8192])
def test_crcs_agree_with_srec_cat(size: int, tmp_path: Path) -> None:
    base = 0x08000000
    data = os.urandom(size)
    source = tmp_path / "data.hex"
    source.write_text(emit_ihex(parse_binary(data, base)))
    end = f"0x{base + size:08X}"
    for flag, expected in (("-stm32-l-e", crc32_stm32(data)), ("-crc32-l-e", crc32_iso_hdlc(data))):
        out = srec_cat(
            str(source), "-Intel", "-crop", hex(base), end, flag, end, "-o", "-", "-Intel"
        )
        assert parse_ihex(out).read(base + size, 4) == expected.to_bytes(4, "little"), flag


@pytest.mark.parametrize("name", list_profiles())
def test_patched_fixture_checksum_agrees_with_srec_cat(name: str, tmp_path: Path) -> None:
    profile = load_profile(name)
    layout = profile.patch_layout()
    patched = patch(
        load(FIXTURES / name / "bootloader.hex"), layout, 42, bytes(profile.key_size_bytes)
    )
    source = tmp_path / "patched.hex"
    source.write_text(emit_ihex(patched))
    spec = layout.checksum
    assert spec is not None
    flag = {"crc32_stm32": "-stm32-l-e", "crc32": "-crc32-l-e"}[spec.algorithm]
    start, end, at = (f"0x{v:08X}" for v in (spec.start, spec.end, spec.location))
    out = parse_ihex(
        srec_cat(str(source), "-Intel", "-crop", start, end, flag, at, "-o", "-", "-Intel")
    )
    assert out.read(spec.location, 4) == patched.read(spec.location, 4)
