"""pyOCD targets the provisioner needs that pyOCD lacks (registered on request, not on import)."""

from __future__ import annotations

import logging
from typing import Any

from pyocd.core.memory_map import FlashRegion, MemoryMap, RamRegion
from pyocd.debug.svd.loader import SVDFile
from pyocd.target import TARGET
from pyocd.target.builtin import target_STM32F103RC, target_STM32F412xx
from pyocd.target.family.target_nRF52 import NRF52

LOG = logging.getLogger(__name__)
APPROTECT_SUFFIX = "_approtect"

STM32F103C8_TARGET = "stm32f103c8"


class STM32F103C8(target_STM32F103RC.STM32F103RC):  # type: ignore[misc]
    """STM32F103x8: 64 KiB flash in 1 KiB pages, 20 KiB RAM, the same flash algorithm as the RC.

    The page size must be right: with the RC's 2 KiB sectors pyOCD would erase every other
    1 KiB page only and program into unerased flash.
    """

    MEMORY_MAP = MemoryMap(
        FlashRegion(start=0x08000000, length=0x10000, blocksize=0x400, is_boot_memory=True,
                    algo=target_STM32F103RC.FLASH_ALGO),
        RamRegion(start=0x20000000, length=0x5000),
    )

    def __init__(self, session: object) -> None:
        super(target_STM32F103RC.STM32F103RC, self).__init__(session, self.MEMORY_MAP)
        self._svd_location = SVDFile.from_builtin("STM32F103xx.svd")


class STM32F411CE(target_STM32F412xx.STM32F412xE):  # type: ignore[misc]
    """STM32F411xE: the F412xE's 512 KiB sector layout and algorithm, 128 KiB RAM."""

    MEMORY_MAP = MemoryMap(
        *(region for region in target_STM32F412xx.STM32F412xE.MEMORY_MAP
          if region.is_flash),
        RamRegion(start=0x20000000, length=0x20000),
    )


STM32F411CE_TARGET = "stm32f411ce"
CUSTOM_TARGETS: dict[str, type] = {
    STM32F103C8_TARGET: STM32F103C8,
    STM32F411CE_TARGET: STM32F411CE,
}


def register_targets() -> None:
    """Add the custom targets to pyOCD's target table (idempotent)."""
    for name, cls in CUSTOM_TARGETS.items():
        TARGET.setdefault(name, cls)


class _OpensWhenLocked:
    """nRF52 mixin: skip the FICR part-info read on a chip whose APPROTECT blocks the AHB-AP.

    pyOCD's nRF52 target reads FICR through a core that a locked chip never lets it discover,
    so connecting without auto-unlock would fail; with this the session opens with the CTRL-AP
    alone (and no cores), which is all ``is_locked`` and ``mass_erase`` need.
    """

    def check_part_info(self: Any) -> None:
        if self.is_locked():
            LOG.info("APPROTECT enabled: part information (FICR) is not readable")
            return
        super().check_part_info()  # type: ignore[misc]


def nrf52_lockable_target(name: str) -> str:
    """Register and name a variant of pyOCD's nRF52 target ``name`` that opens when locked."""
    variant = name + APPROTECT_SUFFIX
    if variant not in TARGET:
        base = TARGET[name]
        if not issubclass(base, NRF52):
            raise ValueError(f"pyOCD target {name} is not an nRF52")
        TARGET[variant] = type(base.__name__ + "Lockable", (_OpensWhenLocked, base), {})
    return variant
