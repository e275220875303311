"""Fixtures: committed files equal the generator's output; vector tables valid; patch() works."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from hex_generator import load, patch
from hex_generator.checksums import checksum_bytes
from hw_profiles import list_profiles, load_profile
from provisioner.sim.firmware import built_image

FIXTURES = Path(__file__).parents[2] / "fixtures"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", list_profiles())
def test_committed_fixtures_match_the_generator(name: str) -> None:
    rendered = generator().render(load_profile(name))
    for file_name, text in rendered.items():
        assert (FIXTURES / name / file_name).read_text() == text, f"{name}/{file_name} is stale"


def test_generator_writes_every_profile(tmp_path: Path) -> None:
    assert generator().main([str(tmp_path)]) == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.hex"))
    expected = sorted(
        f"{n}/{f}" for n in list_profiles() for f in ("application.hex", "bootloader.hex")
    )
    assert written == expected


@pytest.mark.parametrize("name", list_profiles())
@pytest.mark.parametrize("kind", ["bootloader", "application"])
def test_vector_table_is_valid_cortex_m(name: str, kind: str) -> None:
    profile = load_profile(name)
    image = load(FIXTURES / name / f"{kind}.hex")
    base = image.min_address
    sp = int.from_bytes(image.read(base, 4), "little")
    reset = int.from_bytes(image.read(base + 4, 4), "little")
    assert profile.ram.base < sp <= profile.ram.end  # full-descending stack: may start at end
    assert sp % 8 == 0  # AAPCS stack alignment
    assert reset & 1
    assert profile.flash.contains(reset & ~1, (reset & ~1) + 2)
    assert image.min_address < reset & ~1 < image.max_address
    if built_image(profile, kind) is None:  # pseudo code: sizes and byte spread of the generator
        assert 4 * 1024 <= image.size_bytes <= 16 * 1024
        assert len(set(image.read(base + 0x100, 0x1000))) > 200  # code-like, not blank
    else:  # built from C: its bytes are the build's (test_bootloader_build.py compares them)
        assert image.read(base, image.size_bytes) == built_image(profile, kind)
    if kind == "application":
        assert image.min_address == profile.bootloader.end


@pytest.mark.parametrize("name", list_profiles())
def test_patch_works_on_each_bootloader_template(name: str) -> None:
    profile = load_profile(name)
    layout = profile.patch_layout()
    template = load(FIXTURES / name / "bootloader.hex")
    key = bytes(range(profile.key_size_bytes))
    patched = patch(template, layout, 0xC0FFEE, key)
    assert patched.ranges() == [(layout.image_start, layout.image_end)]
    assert patched.read(profile.key_zone.address, len(key)) == key
    assert patched.read(profile.id_zone.address, 4) == (0xC0FFEE).to_bytes(4, "little")
    spec = layout.checksum
    assert spec is not None
    body = patched.read(spec.start, spec.end - spec.start)
    expected = checksum_bytes(spec.algorithm, body, spec.size_bytes, spec.byteorder)
    assert patched.read(spec.location, spec.size_bytes) == expected
    assert patched.read(layout.image_start, 0x100) == template.read(layout.image_start, 0x100)
