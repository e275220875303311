"""Hardware profiles: datasheet values, layouts, canonical digests, validation errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hex_generator import ChecksumAlgorithm, PatchLayout
from hw_profiles import Profile, ProfileValidationError, list_profiles, load_profile

PROFILE_DIR = Path(__file__).parents[2] / "hw_profiles"
KiB = 1024

# (flash base, flash size, page size or None, RAM size, UID address, UID size, pyOCD target, PID)
DATASHEET = {
    "stm32f103c8": (0x08000000, 64 * KiB, 1 * KiB, 20 * KiB, 0x1FFFF7E8, 12, "stm32f103c8", 0x410),
    "stm32f411ce": (0x08000000, 512 * KiB, None, 128 * KiB, 0x1FFF7A10, 12, "stm32f411ce", 0x431),
    "stm32l432kc": (0x08000000, 256 * KiB, 2 * KiB, 64 * KiB, 0x1FFF7590, 12, "stm32l432kc", 0x435),
    "nrf52840": (0x00000000, 1024 * KiB, 4 * KiB, 256 * KiB, 0x10000060, 8, "nrf52840", None),
}


def test_bundled_profiles_are_listed() -> None:
    assert list_profiles() == sorted(DATASHEET)


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_datasheet_values(name: str) -> None:
    base, size, page, ram, uid, uid_size, target, pid = DATASHEET[name]
    profile = load_profile(name)
    assert isinstance(profile, Profile)
    assert (profile.flash.base, profile.flash.size_bytes, profile.flash.page_size_bytes) == (
        base,
        size,
        page,
    )
    assert (profile.ram.base, profile.ram.size_bytes) == (0x20000000, ram)
    assert (profile.chip_uid.base, profile.chip_uid.size_bytes) == (uid, uid_size)
    assert profile.swd is not None
    assert profile.swd.pyocd_target == target
    assert sum(n for _, n in profile.flash.sectors) == size
    assert profile.flash.sectors[0][0] == base
    if pid is None:
        assert profile.serial is None
        assert profile.readout_protection.method == "nrf52_approtect"
    else:
        assert profile.serial is not None
        assert profile.serial.product_id == pid
        assert (profile.serial.boot0.line, profile.serial.reset.line) == ("rts", "dtr")
        assert profile.serial.parity == "even"
        assert profile.readout_protection.method == "stm32_option_bytes"


def test_stm32f411_sectors_and_erase_ranges() -> None:
    flash = load_profile("stm32f411ce").flash
    assert [n // KiB for _, n in flash.sectors] == [16, 16, 16, 16, 64, 128, 128, 128]
    assert flash.erase_ranges(0x08000000, 0x08002000) == [(0x08000000, 0x4000)]
    assert flash.erase_ranges(0x08003FFF, 0x08010001) == [
        (0x08000000, 0x4000), (0x08004000, 0x4000), (0x08008000, 0x4000),
        (0x0800C000, 0x4000), (0x08010000, 0x10000),
    ]  # fmt: skip
    assert flash.contains(0x08000000, 0x08080000)
    assert not flash.contains(0x08000000, 0x08080001)
    with pytest.raises(ValueError, match="outside flash"):
        flash.erase_ranges(0x07FFFFFF, 0x08000001)


@pytest.mark.parametrize("name", sorted(DATASHEET))
def test_patch_layout_sits_in_the_bootloader_region(name: str) -> None:
    profile = load_profile(name)
    layout = profile.patch_layout()
    assert isinstance(layout, PatchLayout)
    region_bytes = 0x6000 if name == "stm32f103c8" else 0x2000  # f103: the 24 KiB C bootloader
    assert (layout.image_start, layout.image_end) == (
        profile.flash.base,
        profile.flash.base + region_bytes,
    )
    assert layout.id_zone == profile.id_zone
    assert layout.key_zone.size_bytes == profile.key_size_bytes
    assert layout.checksum is not None
    expected = ChecksumAlgorithm.crc32 if name == "nrf52840" else ChecksumAlgorithm.crc32_stm32
    assert layout.checksum.algorithm is expected
    assert layout.checksum.location_end == layout.image_end


def test_sha256_is_canonical_and_changes_with_content(tmp_path: Path) -> None:
    source = (PROFILE_DIR / "stm32f103c8.toml").read_text()
    reordered = tmp_path / "copy.toml"
    # Comments and whitespace do not change the digest; a value does.
    reordered.write_text("# another comment\n" + source.replace(" = ", "="))
    assert load_profile(reordered).sha256 == load_profile("stm32f103c8").sha256
    changed = tmp_path / "changed.toml"
    changed.write_text(source.replace("baud = 115200", "baud = 57600"))
    assert load_profile(changed).sha256 != load_profile("stm32f103c8").sha256
    assert len({load_profile(n).sha256 for n in list_profiles()}) == len(list_profiles())


def broken(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text((PROFILE_DIR / "stm32f411ce.toml").read_text().replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "key_path", "reason"),
    [
        ("baud = 115200", "baud = 115200\nbogus = 1", "serial.bogus", "Extra inputs"),
        ('parity = "even"', 'parity = "odd"', "serial.parity", "'even'"),
        (
            "size_bytes = 0x20000          # 128 KiB",
            "size_bytes = -1",
            "ram.size_bytes",
            "greater than 0",
        ),
        ('encoding = "raw"', 'encoding = "u16"', "zones.key.encoding", "u32le"),
        ("0x20000, 0x20000]", "0x20000]", "flash", "sector sizes add up"),
        ("size_bytes = 32\n", "size_bytes = 16\n", "", "differs from key_size_bytes"),
        ("address = 0x08001FD0", "address = 0x08001FC2", "zones", "overlap"),
        ('algorithm = "crc32_stm32"', 'algorithm = "crc64"', "checksum.algorithm", "crc32"),
        ("location = 0x08001FFC", "location = 0x08001FF0", "checksum", "inside its range"),
    ],
)
def test_validation_errors_name_file_and_key_path(
    tmp_path: Path, old: str, new: str, key_path: str, reason: str
) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(ProfileValidationError) as info:
        load_profile(path)
    assert info.value.file == str(path)
    assert info.value.key_path == key_path
    assert reason in info.value.reason
    assert str(path) in str(info.value)


def test_unknown_name_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ProfileValidationError, match="no profile named 'stm32f999'"):
        load_profile("stm32f999")
    path = tmp_path / "bad.toml"
    path.write_text("name = ")
    with pytest.raises(ProfileValidationError, match="not valid TOML"):
        load_profile(path)
    with pytest.raises(ProfileValidationError, match="cannot read"):
        load_profile(tmp_path / "missing.toml")


def test_profiles_are_frozen() -> None:
    profile = load_profile("nrf52840")
    with pytest.raises(AttributeError):
        profile.name = "x"  # type: ignore[misc]


def test_toml_files_cite_their_sources() -> None:
    for path in PROFILE_DIR.glob("*.toml"):
        text = path.read_text()
        assert text.startswith("#")
        assert "Sources:" in text
        assert tomllib.loads(text)["name"] == path.stem
