"""A virtual STM32 F1/F4/L4 or nRF52 SWD board: the chip assembled, state files that persist."""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from unicorn import arm_const

from hw_profiles import Profile, load_profile
from provisioner.sim.bus import Bus, PowerRail, ReadAsZero
from provisioner.sim.coresight_rom import attach_debug_components
from provisioner.sim.cortex_m import CortexM
from provisioner.sim.nrf52_ctrl_ap import CTRL_AP_NUM, CtrlAp
from provisioner.sim.nrf52_nvmc import Nrf52Flash, default_uicr
from provisioner.sim.stm32_fpec import Stm32F1Flash, default_option_bytes
from provisioner.sim.stm32f1_peripherals import Stm32F1Peripherals, attach_stm32f1_peripherals
from provisioner.sim.stm32f4_flash import Stm32F4Flash, default_option_word
from provisioner.sim.stm32l4_flash import Stm32L4Flash, default_option_register
from provisioner.sim.swd_dap import AccessPortDevice, BoardFaults, SwDap

STATE_VERSION = 1
CPUID_CORTEX_M3_R1P1 = 0x411FC231
CPUID_CORTEX_M4_R0P1 = 0x410FC241
FAMILIES: dict[str, tuple[int, int]] = {  # family → (CPUID, unicorn CPU model)
    "stm32f1": (CPUID_CORTEX_M3_R1P1, arm_const.UC_CPU_ARM_CORTEX_M3),
    "stm32f4": (CPUID_CORTEX_M4_R0P1, arm_const.UC_CPU_ARM_CORTEX_M4),
    "stm32l4": (CPUID_CORTEX_M4_R0P1, arm_const.UC_CPU_ARM_CORTEX_M4),
    "nrf52": (CPUID_CORTEX_M4_R0P1, arm_const.UC_CPU_ARM_CORTEX_M4),
}
FAMILY_NAME_LENGTH = {"stm32_option_bytes": 7, "nrf52_approtect": 5}  # "stm32f1", "nrf52"
L4_SRAM2 = (0x10000000, 0x4000)  # SRAM2 at its own address (also aliased after SRAM1)
DEV_ID_STM32F1 = {65536: 0x410, 131072: 0x410, 262144: 0x414, 524288: 0x414}
DEV_ID_STM32F411 = 0x431
DEV_ID_STM32L43X = 0x435
_PROBE_UID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class BoardStateError(Exception):
    """A virtual board's state files are missing or unreadable."""


@dataclass(frozen=True, slots=True)
class ChipSpec:
    """The emulated chip's memory layout, taken from a hardware profile."""

    profile_name: str
    flash_base: int
    flash_size_bytes: int
    page_size_bytes: int | None
    ram_base: int
    ram_size_bytes: int
    uid_address: int
    uid_size_bytes: int
    family: str = "stm32f1"
    sectors: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_profile(cls, profile: Profile) -> ChipSpec:
        """Check that the profile describes a chip this emulation models and take its layout."""
        length = FAMILY_NAME_LENGTH[profile.readout_protection.method]
        family = profile.mcu.lower()[:length]
        if family not in FAMILIES:
            raise BoardStateError(f"profile {profile.name}: {profile.mcu} is not emulated "
                                  f"(families: {', '.join(FAMILIES)})")
        page = profile.flash.page_size_bytes
        if family != "stm32f4" and page is None:
            raise BoardStateError(f"profile {profile.name}: {profile.mcu} needs uniform pages")
        return cls(profile.name, profile.flash.base, profile.flash.size_bytes, page,
                   profile.ram.base, profile.ram.size_bytes, profile.chip_uid.base,
                   profile.chip_uid.size_bytes, family, tuple(profile.flash.sectors))


def default_options(family: str) -> bytearray:
    """Factory option bytes of a family, in the board's state file layout."""
    if family == "nrf52":
        return default_uicr()
    if family == "stm32l4":
        return default_option_register()
    return default_option_bytes() if family == "stm32f1" else default_option_word()


class VirtualSwdBoard:
    """One emulated board: core, flash controller, debug components and the SW-DP."""

    def __init__(self, spec: ChipSpec, *, chip_uid: bytes, option_bytes: bytearray,
                 flash_content: bytes, faults: BoardFaults) -> None:
        if len(chip_uid) != spec.uid_size_bytes:
            raise BoardStateError(
                f"chip UID has {len(chip_uid)} bytes, profile says {spec.uid_size_bytes}")
        self.spec = spec
        self.chip_uid = chip_uid
        self.bus = Bus()
        self.power = PowerRail(faults.power_loss_after_bytes)
        cpuid, cpu_model = FAMILIES[spec.family]
        self.core = CortexM(self.bus, cpuid=cpuid, cpu_model=cpu_model)
        self.core.map_ram(spec.ram_base, spec.ram_size_bytes)
        self.flash: Stm32F1Flash | Stm32F4Flash | Stm32L4Flash | Nrf52Flash
        aps: dict[int, AccessPortDevice] = {}
        if spec.family == "nrf52":
            self.flash = Nrf52Flash(
                self.core, size_bytes=spec.flash_size_bytes,
                page_size_bytes=spec.page_size_bytes or 0,
                ram=(spec.ram_base, spec.ram_size_bytes), chip_uid=chip_uid,
                uid_address=spec.uid_address, uicr=option_bytes, content=flash_content,
                power=self.power)
            aps[CTRL_AP_NUM] = CtrlAp(self.core, self.flash)
        elif spec.family == "stm32l4":
            self.core.map_ram(*L4_SRAM2)
            self.flash = Stm32L4Flash(
                self.core, base=spec.flash_base, size_bytes=spec.flash_size_bytes,
                page_size_bytes=spec.page_size_bytes or 0, chip_uid=chip_uid,
                uid_address=spec.uid_address, option_bytes=option_bytes,
                content=flash_content, dev_id=DEV_ID_STM32L43X, power=self.power)
        elif spec.family == "stm32f1":
            self.flash = Stm32F1Flash(
                self.core, base=spec.flash_base, size_bytes=spec.flash_size_bytes,
                page_size_bytes=spec.page_size_bytes or 0, chip_uid=chip_uid,
                uid_address=spec.uid_address, option_bytes=option_bytes,
                content=flash_content, dev_id=DEV_ID_STM32F1.get(spec.flash_size_bytes, 0x410),
                power=self.power)
        else:
            self.flash = Stm32F4Flash(
                self.core, base=spec.flash_base, size_bytes=spec.flash_size_bytes,
                sectors=spec.sectors, chip_uid=chip_uid, uid_address=spec.uid_address,
                option_bytes=option_bytes, content=flash_content, dev_id=DEV_ID_STM32F411,
                power=self.power)
        self.peripherals: Stm32F1Peripherals | None = None
        if spec.family == "stm32f1":
            self.peripherals = attach_stm32f1_peripherals(self.core)
        attach_debug_components(self.bus)
        self.bus.attach(0x40000000, 0x20000000, ReadAsZero())  # unmodelled peripherals
        self.bus.attach(0xE0000000, 0x00100000, ReadAsZero())  # rest of the private bus
        self.faults = faults  # as configured; what the state file keeps
        self.dap = SwDap(self.bus, replace(faults), aps=aps,
                         mem_ap_enabled=self._debug_port_open)
        self.power.on_loss.append(self._power_lost)
        self.core.reset()  # power-on: the core starts from the vector table

    def _debug_port_open(self) -> bool:
        """The AHB-AP reaches the bus unless an nRF52's APPROTECT is active."""
        return not (self.spec.family == "nrf52" and self.flash.readout_protected)

    def _power_lost(self) -> None:
        """The supply failed mid-write: the core stops and the debug port stops answering.

        The loss is one-shot: the state file forgets it, so the next session finds power back.
        """
        self.core.locked_up = True
        self.core.uc.emu_stop()
        self.dap.faults.no_target = True
        self.faults = replace(self.faults, power_loss_after_bytes=None)

    def flash_bytes(self, address: int, size: int) -> bytes:
        """The flash content, bypassing every protection (for tests)."""
        offset = address - self.spec.flash_base
        return bytes(self.flash.memory[offset:offset + size])


class BoardLock:
    """Exclusive use of one board by one process (a real probe is not shared either)."""

    def __init__(self, directory: Path, probe_uid: str) -> None:
        state_path, _ = state_paths(directory, probe_uid)
        self._file = state_path.with_suffix(".lock").open("a+b")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._file.close()
            raise BoardStateError(f"virtual board {probe_uid} is in use elsewhere") from exc

    def release(self) -> None:
        """Give the board up (closing the file drops the lock)."""
        self._file.close()


def state_paths(directory: Path, probe_uid: str) -> tuple[Path, Path]:
    if not _PROBE_UID.match(probe_uid):
        raise BoardStateError(f"probe UID {probe_uid!r} must be 1-64 letters, digits, - or _")
    return directory / f"{probe_uid}.json", directory / f"{probe_uid}.bin"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def create_virtual_board(directory: Path | str, probe_uid: str, profile_name: str,
                         chip_uid: bytes) -> Path:
    """Create a blank board (flash erased, RDP off) in ``directory``; return its state file."""
    directory = Path(directory)
    spec = ChipSpec.from_profile(load_profile(profile_name))
    if len(chip_uid) != spec.uid_size_bytes:
        raise BoardStateError(
            f"chip UID has {len(chip_uid)} bytes, {profile_name} says {spec.uid_size_bytes}")
    directory.mkdir(parents=True, exist_ok=True)
    state_path, flash_path = state_paths(directory, probe_uid)
    _write_atomic(flash_path, b"\xff" * spec.flash_size_bytes)
    _write_state(state_path, profile_name, chip_uid, bytes(default_options(spec.family)),
                 BoardFaults())
    return state_path


def replace_chip(directory: Path | str, probe_uid: str, chip_uid: bytes | None = None) -> bytes:
    """Swap a new blank chip in behind the same probe, as an operator swaps boards.

    Waits until no session holds the board (a chip is not pulled mid-write), keeps the
    board's profile and configured faults, and returns the new chip UID (random by default).
    """
    directory = Path(directory)
    state_path, flash_path = state_paths(directory, probe_uid)
    state = _read_state(state_path)
    spec = ChipSpec.from_profile(load_profile(str(state["profile"])))
    uid = bytes(chip_uid) if chip_uid is not None else os.urandom(spec.uid_size_bytes)
    if len(uid) != spec.uid_size_bytes:
        raise BoardStateError(f"chip UID has {len(uid)} bytes, {spec.profile_name} says "
                              f"{spec.uid_size_bytes}")
    with state_path.with_suffix(".lock").open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # blocks while a probe session holds the board
        faults = BoardFaults(**dict(state.get("faults") or {}))  # type: ignore[call-overload]
        _write_atomic(flash_path, b"\xff" * spec.flash_size_bytes)
        _write_state(state_path, spec.profile_name, uid, bytes(default_options(spec.family)),
                     faults)
    return uid


def _write_state(path: Path, profile_name: str, chip_uid: bytes, option_bytes: bytes,
                 faults: BoardFaults) -> None:
    state = {"version": STATE_VERSION, "profile": profile_name, "chip_uid": chip_uid.hex(),
             "option_bytes": option_bytes.hex(), "faults": asdict(faults)}
    _write_atomic(path, json.dumps(state, indent=2).encode())


def _read_state(path: Path) -> dict[str, object]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BoardStateError(f"{path}: cannot read board state: {exc}") from exc
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise BoardStateError(f"{path}: not a version {STATE_VERSION} board state")
    return state


def list_board_uids(directory: Path | str) -> list[str]:
    """Probe UIDs of the boards kept in ``directory`` (sorted)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if _PROBE_UID.match(p.stem))


def load_board(directory: Path | str, probe_uid: str) -> VirtualSwdBoard:
    """Power the board on from its state files."""
    state_path, flash_path = state_paths(Path(directory), probe_uid)
    state = _read_state(state_path)
    try:
        spec = ChipSpec.from_profile(load_profile(str(state["profile"])))
        faults = BoardFaults(**dict(state.get("faults") or {}))  # type: ignore[call-overload]
        chip_uid = bytes.fromhex(str(state["chip_uid"]))
        option_bytes = bytearray.fromhex(str(state["option_bytes"]))
        content = flash_path.read_bytes()
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise BoardStateError(f"{state_path}: invalid board state: {exc}") from exc
    if len(content) != spec.flash_size_bytes:
        raise BoardStateError(f"{flash_path}: {len(content)} bytes, expected "
                              f"{spec.flash_size_bytes}")
    return VirtualSwdBoard(spec, chip_uid=chip_uid, option_bytes=option_bytes,
                           flash_content=content, faults=faults)


def save_board(directory: Path | str, probe_uid: str, board: VirtualSwdBoard) -> None:
    """Persist the board's flash and option bytes (faults stay as configured)."""
    state_path, flash_path = state_paths(Path(directory), probe_uid)
    _write_atomic(flash_path, bytes(board.flash.memory))
    _write_state(state_path, board.spec.profile_name, board.chip_uid,
                 bytes(board.flash.option_bytes), board.faults)


def set_faults(directory: Path | str, probe_uid: str, faults: BoardFaults) -> None:
    """Configure the faults the board injects from its next connection on."""
    state_path, _ = state_paths(Path(directory), probe_uid)
    state = _read_state(state_path)
    state["faults"] = asdict(faults)
    _write_atomic(state_path, json.dumps(state, indent=2).encode())
