"""Rebuilding the C bootloader gives the shipped binaries and fixtures, byte for byte."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hex_generator import parse_ihex
from hw_profiles import load_profile
from provisioner.sim.firmware import built_image, render

ROOT = Path(__file__).parents[2]
BUILD = ROOT / "fixtures" / "bootloader" / "build.py"

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                                reason="arm-none-eabi-gcc missing (apt-get install "
                                       "gcc-arm-none-eabi; tests/run_all.sh installs it)")


def build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootloader_build", BUILD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    module = build_module()
    cache = Path.home() / ".cache" / "provisioner" / "bootloader"
    images: dict[str, bytes] = module.build(tmp_path_factory.mktemp("rebuilt"), cache)
    return images


def test_rebuild_is_byte_identical_to_the_shipped_images(rebuilt: dict[str, bytes]) -> None:
    profile = load_profile("stm32f103c8")
    for kind in ("bootloader", "application"):
        shipped = built_image(profile, kind)
        assert shipped is not None
        assert rebuilt[f"stm32f103c8_{kind}.bin"] == shipped, f"{kind}: rebuild differs"


def test_the_fixtures_are_the_rebuilt_images(rebuilt: dict[str, bytes]) -> None:
    profile = load_profile("stm32f103c8")
    rendered = render(profile)
    for kind in ("bootloader", "application"):
        assert (ROOT / "fixtures" / "stm32f103c8" / f"{kind}.hex").read_text() == \
            rendered[f"{kind}.hex"]
    template = parse_ihex(rendered["bootloader.hex"], source="fixture")
    assert bytes(template.read(profile.bootloader.base, profile.bootloader.size_bytes)) == \
        rebuilt["stm32f103c8_bootloader.bin"]


def test_a_tampered_dependency_is_refused(rebuilt: dict[str, bytes], tmp_path: Path) -> None:
    module = build_module()  # ``rebuilt`` filled the cache with the genuine archive
    dep = module.MONOCYPHER4
    cached = Path.home() / ".cache" / "provisioner" / "bootloader" / dep.file_name
    forged = tmp_path / dep.file_name
    data = bytearray(cached.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside the archive
    forged.write_bytes(data)
    found = hashlib.sha256(forged.read_bytes()).hexdigest()
    with pytest.raises(module.BuildError, match=f"SHA-256 {found}, pinned {dep.sha256}"):
        module.fetch(dep, tmp_path)
