"""hex-generator CLI: info, convert, patch (through hw_profiles.cli), one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hex_generator import Image, ImageTooLarge, emit_binary, emit_ihex, load, parse_ihex
from hex_generator import cli as hex_cli
from hw_profiles import cli as profiles_cli
from hw_profiles import load_profile

FIXTURES = Path(__file__).parents[2] / "fixtures"
TEMPLATE = FIXTURES / "stm32f103c8" / "bootloader.hex"
BAD = Path(__file__).parents[1] / "data" / "hex" / "bad_checksum.hex"


def test_info_prints_ranges_sizes_entry_and_digest(capsys: pytest.CaptureFixture[str]) -> None:
    assert profiles_cli.main(["info", str(TEMPLATE)]) == 0
    out = capsys.readouterr().out
    image = load(TEMPLATE)
    assert "0x08000000-0x08006000      24,576 bytes" in out  # the 24 KiB bootloader region
    entry = int.from_bytes(image.read(0x08000004, 4), "little")  # the reset vector
    assert f"entry 0x{entry:08X} (linear)" in out
    assert image.sha256(0x08000000, 0x08006000).hex() in out


def test_convert_hex_to_srec_and_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    srec = tmp_path / "out.s19"
    assert hex_cli.main(["convert", str(TEMPLATE), str(srec), "--record-length", "64"]) == 0
    assert load(srec).ranges() == load(TEMPLATE).ranges()
    assert all(
        len(line) == 2 + 2 * (1 + 4 + 64 + 1) for line in srec.read_text().splitlines()[1:-3]
    )
    binary = tmp_path / "out.bin"
    assert hex_cli.main(["convert", str(srec), str(binary)]) == 0
    assert binary.read_bytes() == bytes(load(TEMPLATE).read(0x08000000, 0x6000))
    assert "wrote" in capsys.readouterr().out


def test_patch_writes_patched_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "patched.hex"
    key_hex = "00112233445566778899aabbccddeeff"
    args = ["patch", str(TEMPLATE), "--profile", "stm32f103c8", "--device-id", "0x1234"]
    assert profiles_cli.main([*args, "--key-hex", key_hex, "-o", str(out)]) == 0
    image = parse_ihex(out.read_text())
    profile = load_profile("stm32f103c8")
    assert image.read(profile.key_zone.address, 16).hex() == key_hex
    assert image.read(profile.id_zone.address, 4) == bytes.fromhex("34120000")
    printed = capsys.readouterr().out
    assert image.sha256(0x08000000, 0x08006000).hex() in printed
    assert key_hex not in printed


def test_patch_without_profiles_explains(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["patch", str(TEMPLATE), "--profile", "x", "--device-id", "1", "--key-hex", "00"]
    assert hex_cli.main([*args, "-o", str(tmp_path / "o.hex")]) == 1
    assert "needs hardware profiles" in capsys.readouterr().err


def patch_args(profile: str, key_hex: str) -> list[str]:
    return [
        "patch",
        str(TEMPLATE),
        "--profile",
        profile,
        "--device-id",
        "1",
        "--key-hex",
        key_hex,
        "-o",
        "x",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", str(BAD)], f"{BAD}:3: checksum 0x00, expected 0x68"),
        (patch_args("nope", "00"), "no profile named 'nope'"),
        (patch_args("stm32f103c8", "0g"), "--key-hex is not"),
        (patch_args("stm32f103c8", "00"), "zone 'key': key is 1 bytes"),
    ],
)
def test_errors_are_one_line_and_debug_adds_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert profiles_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"hex-generator: error: {err.split('error: ', 1)[1]}"
    assert err.count("\n") == 1
    assert message in err
    assert profiles_cli.main(["--debug", *argv]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_convert_refuses_a_sparse_image_that_would_expand_past_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 11 §4: two bytes 4 GiB apart died with a MemoryError traceback."""
    sparse = Image()
    sparse.add(0x00000000, b"\xaa")
    sparse.add(0xFFFFFFFF, b"\x55")
    source = tmp_path / "sparse.hex"
    source.write_text(emit_ihex(sparse), encoding="ascii")
    out = tmp_path / "out.bin"
    assert hex_cli.main(["convert", str(source), str(out)]) == 1
    error = capsys.readouterr().err.strip()
    assert error == (
        "hex-generator: error: image spans [0x00000000, 0x100000000) = 4,294,967,296 bytes as "
        "a binary, more than the limit of 268,435,456 bytes")
    assert not out.exists()
    with pytest.raises(ImageTooLarge) as caught:
        emit_binary(sparse, max_size_bytes=2**20)
    assert (caught.value.start, caught.value.end, caught.value.limit) == (0, 2**32, 2**20)


def test_convert_max_size_is_configurable(tmp_path: Path) -> None:
    spread = Image()
    spread.add(0x1000, b"\x01")
    spread.add(0x1FFF, b"\x02")
    source = tmp_path / "spread.hex"
    source.write_text(emit_ihex(spread), encoding="ascii")
    assert hex_cli.main(["convert", str(source), str(tmp_path / "a.bin"), "--max-size",
                         "4095"]) == 1
    assert hex_cli.main(["convert", str(source), str(tmp_path / "b.bin"), "--max-size",
                         "0x1000"]) == 0
    assert len((tmp_path / "b.bin").read_bytes()) == 0x1000
