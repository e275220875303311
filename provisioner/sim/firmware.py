"""Deterministic bootloader templates and applications for a profile (fixtures, demo, tests).

A profile with a reference bootloader built from C (``fixtures/bootloader/``, today the
stm32f103c8) ships its binaries in ``provisioner/sim/images/``: the template is that region
(zones blank) and the application the demo program of slot A. Other profiles get vector tables
plus code-like bytes from SHA-256 in counter mode: valid Cortex-M vectors (initial SP inside RAM,
odd reset vector inside flash) and placeholder-filled zones.
``fixtures/make_fixtures.py`` writes them to files; the demo builds them in memory.
"""

from __future__ import annotations

import hashlib
from importlib import resources

from hex_generator import Image, StartAddress, emit_ihex
from hw_profiles import Profile

VECTOR_COUNT = 64  # 16 Cortex-M system vectors + 48 IRQs
BOOTLOADER_CODE_BYTES = 0x1800  # 6 KiB of code; the rest of the 8 KiB region is blank
APPLICATION_CODE_BYTES = 0x3000  # 12 KiB
_RESERVED_VECTORS = {7, 8, 9, 10, 13}  # ARMv7-M: reserved entries hold 0


def pseudo_code(label: str, size_bytes: int) -> bytes:
    """Return `size_bytes` deterministic code-like bytes (SHA-256 in counter mode over `label`)."""
    out = bytearray()
    counter = 0
    while len(out) < size_bytes:
        out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size_bytes])


def vector_table(profile: Profile, code_start: int, code_end: int) -> bytes:
    """Return a Cortex-M vector table: SP inside RAM, odd (Thumb) handlers in the code range."""
    # Top of RAM minus 8 keeps the initial SP inside RAM and 8-byte aligned (AAPCS).
    words = [profile.ram.end - 8, code_start | 1]
    for index in range(2, VECTOR_COUNT):
        if index in _RESERVED_VECTORS:
            words.append(0)
        else:
            handler = code_start + 0x40 + (index * 0x10) % (code_end - code_start - 0x80)
            words.append(handler | 1)
    return b"".join(w.to_bytes(4, "little") for w in words)


def built_image(profile: Profile, kind: str) -> bytes | None:
    """Return the C-built ``kind`` ("bootloader" or "application") of a profile, if it has one."""
    resource = resources.files("provisioner.sim.images") / f"{profile.name}_{kind}.bin"
    return resource.read_bytes() if resource.is_file() else None


def _image_at(base: int, data: bytes) -> Image:
    image = Image()
    image.add(base, data)
    image.start_address = StartAddress.linear(int.from_bytes(data[4:8], "little"))
    return image


def bootloader_template(profile: Profile) -> Image:
    """Return the bootloader template: vectors, code, then blank to the region end (zones too)."""
    region = profile.bootloader
    built = built_image(profile, "bootloader")
    if built is not None:
        if len(built) != region.size_bytes:
            raise ValueError(f"{profile.name}: built bootloader has {len(built)} bytes, "
                             f"region {region.size_bytes}")
        return _image_at(region.base, built)
    table_size = VECTOR_COUNT * 4
    code_start = region.base + table_size
    code_end = region.base + BOOTLOADER_CODE_BYTES
    image = Image()
    image.add(region.base, vector_table(profile, code_start, code_end))
    image.add(code_start, pseudo_code(f"{profile.name}/bootloader", code_end - code_start))
    image.add(code_end, bytes([profile.fill_byte]) * (region.end - code_end))
    for zone in (profile.id_zone, profile.key_zone):
        if zone.placeholder != profile.fill_byte:
            raise ValueError(f"{profile.name}: zone {zone.name} placeholder is not the fill byte")
    image.start_address = StartAddress.linear(code_start | 1)
    return image


def application_image(profile: Profile) -> Image:
    """Return an application placed right after the bootloader region (slot A)."""
    base = profile.bootloader.end
    built = built_image(profile, "application")
    if built is not None:
        return _image_at(base, built)
    code_start = base + VECTOR_COUNT * 4
    code_end = base + APPLICATION_CODE_BYTES
    image = Image()
    image.add(base, vector_table(profile, code_start, code_end))
    image.add(code_start, pseudo_code(f"{profile.name}/application", code_end - code_start))
    image.start_address = StartAddress.linear(code_start | 1)
    return image


def render(profile: Profile) -> dict[str, str]:
    """Return {file name: Intel HEX text} for one profile."""
    return {
        "bootloader.hex": emit_ihex(bootloader_template(profile)),
        "application.hex": emit_ihex(application_image(profile)),
    }
