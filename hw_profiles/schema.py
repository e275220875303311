"""Pydantic schema of a profile TOML file (untrusted text: extra keys forbidden)."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hex_generator import ChecksumAlgorithm, ZoneEncoding

U32 = Field(ge=0, le=0xFFFFFFFF)
SIZE = Field(gt=0, le=1 << 32)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class FlashModel(_Strict):
    base: int = U32
    size_bytes: int = SIZE
    page_size_bytes: int | None = Field(default=None, gt=0)
    sector_sizes_bytes: list[int] | None = None

    @model_validator(mode="after")
    def _one_geometry(self) -> Self:
        if (self.page_size_bytes is None) == (self.sector_sizes_bytes is None):
            raise ValueError("give exactly one of page_size_bytes and sector_sizes_bytes")
        if self.page_size_bytes is not None and self.size_bytes % self.page_size_bytes:
            raise ValueError(
                f"size_bytes is not a multiple of page_size_bytes {self.page_size_bytes}"
            )
        if self.sector_sizes_bytes is not None:
            if any(s <= 0 for s in self.sector_sizes_bytes):
                raise ValueError("sector sizes must be positive")
            if sum(self.sector_sizes_bytes) != self.size_bytes:
                raise ValueError(
                    f"sector sizes add up to {sum(self.sector_sizes_bytes)}, not size_bytes"
                )
        return self


class RegionModel(_Strict):
    base: int = U32
    size_bytes: int = SIZE


class ChipUidModel(_Strict):
    address: int = U32
    size_bytes: int = Field(gt=0, le=64)


class SwdModel(_Strict):
    pyocd_target: str = Field(min_length=1)
    pack: str | None = None


class PinModel(_Strict):
    line: Literal["rts", "dtr", "none"]
    active_high: bool


class SerialModel(_Strict):
    protocol: Literal["an3155"]
    baud: int = Field(ge=1200, le=1_000_000)
    parity: Literal["even"]
    product_id: int = Field(ge=0, le=0xFFFF)
    boot0: PinModel
    reset: PinModel


class ReadoutModel(_Strict):
    level: int = Field(ge=0, le=2)
    method: Literal["stm32_option_bytes", "nrf52_approtect"]


class ZoneModel(_Strict):
    address: int = U32
    size_bytes: int = Field(gt=0, le=256)
    encoding: ZoneEncoding
    placeholder: int = Field(default=0xFF, ge=0, le=0xFF)


class ZonesModel(_Strict):
    device_id: ZoneModel
    key: ZoneModel


class ChecksumModel(_Strict):
    algorithm: ChecksumAlgorithm
    start: int = U32
    end: int = U32
    location: int = U32
    size_bytes: int = Field(gt=0, le=32)
    byteorder: Literal["little", "big"] = "little"


class UpdateModel(_Strict):
    """Field-update flash layout (docs/updates-protocol.md §8): two slots, boot state, event log."""

    slot_a: RegionModel
    slot_b: RegionModel
    boot_state: RegionModel
    event_log: RegionModel


class ProfileModel(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    mcu: str = Field(min_length=1)
    description: str
    key_size_bytes: Literal[16, 32]
    fill_byte: int = Field(default=0xFF, ge=0, le=0xFF)
    flash: FlashModel
    ram: RegionModel
    chip_uid: ChipUidModel
    swd: SwdModel | None = None
    serial: SerialModel | None = None
    readout_protection: ReadoutModel
    bootloader: RegionModel
    zones: ZonesModel
    checksum: ChecksumModel | None = None
    update: UpdateModel | None = None

    @model_validator(mode="after")
    def _fits(self) -> Self:
        flash_end = self.flash.base + self.flash.size_bytes
        boot = self.bootloader
        if not self.flash.base <= boot.base < boot.base + boot.size_bytes <= flash_end:
            raise ValueError("bootloader region lies outside flash")
        if self.zones.key.size_bytes != self.key_size_bytes:
            raise ValueError("zones.key.size_bytes differs from key_size_bytes")
        if self.swd is None and self.serial is None:
            raise ValueError("a profile needs at least one transport: swd or serial")
        if self.update is not None:
            self._check_update(self.update, flash_end)
        return self

    def _check_update(self, update: UpdateModel, flash_end: int) -> None:
        page = self.flash.page_size_bytes
        regions = [("bootloader", self.bootloader.base, self.bootloader.size_bytes)]
        for name in ("slot_a", "slot_b", "boot_state", "event_log"):
            region: RegionModel = getattr(update, name)
            if not self.flash.base <= region.base < region.base + region.size_bytes <= flash_end:
                raise ValueError(f"update.{name} lies outside flash")
            if page is None or region.base % page or region.size_bytes % page:
                raise ValueError(f"update.{name} is not aligned to flash pages")
            regions.append((name, region.base, region.size_bytes))
        for name in ("boot_state", "event_log"):
            if getattr(update, name).size_bytes != 2 * (page or 0):
                raise ValueError(f"update.{name} must be exactly two flash pages")
        if update.slot_a.size_bytes != update.slot_b.size_bytes:
            raise ValueError("update.slot_a and update.slot_b differ in size")
        regions.sort(key=lambda r: r[1])
        for (first, start, size), (second, nxt, _) in pairwise(regions):
            if start + size > nxt:
                raise ValueError(f"update regions {first} and {second} overlap")
