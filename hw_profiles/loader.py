"""Load a profile by name or path: TOML → schema → resolved Profile, validated once."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

from pydantic import ValidationError

from hex_generator import ChecksumSpec, PatchLayout, Zone
from hw_profiles.errors import ProfileValidationError
from hw_profiles.profile import (
    FlashGeometry,
    MemoryRegion,
    PinWiring,
    Profile,
    ReadoutProtection,
    SerialTransport,
    SwdTransport,
    UpdateLayout,
)
from hw_profiles.schema import FlashModel, ProfileModel, RegionModel

PROFILE_DIR = Path(__file__).resolve().parent


def list_profiles() -> list[str]:
    """Return the names of the bundled profiles, sorted."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a bundled profile by name, or any profile file by path.

    Raises:
        ProfileValidationError: unknown name, unreadable file, bad TOML or a bad value
            (names the file and the key path).
    """
    path = _locate(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileValidationError(str(path), "", f"cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileValidationError(str(path), "", f"not valid TOML: {exc}") from exc
    try:
        model = ProfileModel.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key_path = ".".join(str(part) for part in first["loc"])
        raise ProfileValidationError(str(path), key_path, first["msg"]) from exc
    return _resolve(model, str(path))


def _locate(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        return Path(name_or_path)
    path = PROFILE_DIR / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(list_profiles())
        raise ProfileValidationError(text, "", f"no profile named {text!r} (known: {known})")
    return path


def canonical_sha256(model: ProfileModel) -> str:
    """Return the hex SHA-256 of the profile's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _sectors(flash: FlashModel) -> tuple[tuple[int, int], ...]:
    sizes = flash.sector_sizes_bytes or [flash.page_size_bytes or 0] * (
        flash.size_bytes // (flash.page_size_bytes or 1)
    )
    sectors = []
    position = flash.base
    for size in sizes:
        sectors.append((position, size))
        position += size
    return tuple(sectors)


def _resolve(model: ProfileModel, file: str) -> Profile:
    zones = model.zones
    id_zone = _zone(file, "device_id", zones.device_id.model_dump())
    key_zone = _zone(file, "key", zones.key.model_dump())
    checksum = None
    if model.checksum is not None:
        try:
            checksum = ChecksumSpec(**model.checksum.model_dump())
        except ValueError as exc:
            raise ProfileValidationError(file, "checksum", str(exc)) from exc
    serial = None
    if model.serial is not None:
        s = model.serial
        boot0 = PinWiring(s.boot0.line, s.boot0.active_high)
        reset = PinWiring(s.reset.line, s.reset.active_high)
        serial = SerialTransport(s.protocol, s.baud, s.parity, s.product_id, boot0, reset)
    profile = Profile(
        name=model.name,
        mcu=model.mcu,
        description=model.description,
        flash=FlashGeometry(
            model.flash.base,
            model.flash.size_bytes,
            _sectors(model.flash),
            model.flash.page_size_bytes,
        ),
        ram=MemoryRegion(model.ram.base, model.ram.size_bytes),
        chip_uid=MemoryRegion(model.chip_uid.address, model.chip_uid.size_bytes),
        swd=SwdTransport(model.swd.pyocd_target, model.swd.pack) if model.swd else None,
        serial=serial,
        readout_protection=ReadoutProtection(
            model.readout_protection.level, model.readout_protection.method
        ),
        key_size_bytes=model.key_size_bytes,
        fill_byte=model.fill_byte,
        bootloader=MemoryRegion(model.bootloader.base, model.bootloader.size_bytes),
        id_zone=id_zone,
        key_zone=key_zone,
        checksum=checksum,
        sha256=canonical_sha256(model),
        update=_update(model),
    )
    try:
        layout: PatchLayout = profile.patch_layout()
    except ValueError as exc:
        raise ProfileValidationError(file, "zones", str(exc)) from exc
    del layout
    return profile


def _update(model: ProfileModel) -> UpdateLayout | None:
    if model.update is None or model.flash.page_size_bytes is None:
        return None
    u = model.update

    def region(r: RegionModel) -> MemoryRegion:
        return MemoryRegion(r.base, r.size_bytes)

    return UpdateLayout((region(u.slot_a), region(u.slot_b)), region(u.boot_state),
                        region(u.event_log), model.flash.page_size_bytes)


def _zone(file: str, name: str, fields: dict[str, object]) -> Zone:
    try:
        return Zone(name=name, **fields)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ProfileValidationError(file, f"zones.{name}", str(exc)) from exc
