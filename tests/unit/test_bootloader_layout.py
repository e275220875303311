"""The C bootloader's linker script and the stm32f103c8 profile name the same addresses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hw_profiles import load_profile
from provisioner.sim.firmware import built_image

LINKER_SCRIPT = Path(__file__).parents[2] / "fixtures" / "bootloader" / "stm32f103c8.ld"
_ASSIGNMENT = re.compile(r"^([A-Z_]+)\s*=\s*(0x[0-9A-Fa-f]+|\d+);", re.MULTILINE)
_MEMORY = re.compile(r"^\s*(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),\s*"
                     r"LENGTH\s*=\s*(0x[0-9A-Fa-f]+)", re.MULTILINE)


def symbols() -> dict[str, int]:
    return {name: int(value, 0) for name, value in _ASSIGNMENT.findall(LINKER_SCRIPT.read_text())}


def memory() -> dict[str, tuple[int, int]]:
    return {name: (int(origin, 0), int(length, 0))
            for name, origin, length in _MEMORY.findall(LINKER_SCRIPT.read_text())}


def test_zones_checksum_and_region_match_the_profile() -> None:
    profile = load_profile("stm32f103c8")
    sym = symbols()
    checksum = profile.patch_layout().checksum
    assert checksum is not None
    assert (sym["BOOTLOADER_BASE"], sym["BOOTLOADER_END"]) == (profile.bootloader.base,
                                                              profile.bootloader.end)
    assert (sym["DEVICE_ID_ZONE"], sym["DEVICE_ID_SIZE"]) == (profile.id_zone.address,
                                                             profile.id_zone.size_bytes)
    assert (sym["KEY_ZONE"], sym["KEY_SIZE"]) == (profile.key_zone.address,
                                                 profile.key_zone.size_bytes)
    assert sym["CHECKSUM_LOCATION"] == checksum.location == checksum.end
    assert checksum.start == sym["BOOTLOADER_BASE"]
    assert checksum.location_end == sym["BOOTLOADER_END"]
    assert (sym["RAM_BASE"], sym["RAM_SIZE"]) == (profile.ram.base, profile.ram.size_bytes)


def test_code_stops_before_the_zones_and_zones_end_the_region() -> None:
    sym = symbols()
    regions = memory()
    code_origin, code_length = regions["CODE"]
    zones_origin, zones_length = regions["ZONES"]
    assert code_origin == sym["BOOTLOADER_BASE"]
    assert code_origin + code_length == zones_origin == sym["DEVICE_ID_ZONE"]
    assert zones_origin + zones_length == sym["BOOTLOADER_END"]
    assert regions["RAM"] == (sym["RAM_BASE"], sym["RAM_SIZE"])


def test_slots_follow_the_bootloader_as_the_update_layout_says() -> None:
    profile = load_profile("stm32f103c8")
    sym = symbols()
    assert sym["SLOT_A_BASE"] == profile.bootloader.end  # the application the station programs
    assert sym["SLOT_B_BASE"] == sym["SLOT_A_BASE"] + sym["SLOT_SIZE"]
    assert sym["BOOT_STATE_BASE"] == sym["SLOT_B_BASE"] + sym["SLOT_SIZE"]
    assert sym["EVENT_LOG_BASE"] == sym["BOOT_STATE_BASE"] + 2 * profile.flash.page_size_bytes
    assert sym["EVENT_LOG_BASE"] + 2 * 1024 == profile.flash.end


@pytest.mark.parametrize("zone", ["id_zone", "key_zone"])
def test_the_shipped_template_holds_placeholders_in_the_zones(zone: str) -> None:
    profile = load_profile("stm32f103c8")
    image = built_image(profile, "bootloader")
    assert image is not None
    found = getattr(profile, zone)
    at = found.address - profile.bootloader.base
    assert image[at:at + found.size_bytes] == bytes([found.placeholder]) * found.size_bytes
