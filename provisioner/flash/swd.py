"""Flash backend over SWD through pyOCD's Python API: session by probe UID, loader from memory."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from pyocd.core import exceptions as pe
from pyocd.core.helpers import ConnectHelper
from pyocd.core.session import Session

from hw_profiles import Profile
from provisioner.errors import (
    AddressOutOfRange,
    ChipMismatch,
    FlashError,
    ProbeError,
    ReadoutProtected,
    VerifyMismatch,
)
from provisioner.flash.backend import (
    Capabilities,
    MemorySegment,
    Operation,
    ProgressCallback,
    ProgressEvent,
    no_progress,
)
from provisioner.flash.pyocd_errors import translate
from provisioner.flash.pyocd_logging import route_pyocd_logging
from provisioner.flash.pyocd_targets import nrf52_lockable_target, register_targets
from provisioner.flash.swd_protect import (
    PROTECTORS,
    family_of,
    launch_option_load_stm32l4,
    protect_nrf52,
    readout_protected,
    reset_nrf52,
)

READ_CHUNK_BYTES = 4096
DBGMCU_IDCODE = 0xE0042000  # STM32 DEV_ID in bits 11:0 (RM0008 §31.6.1, RM0383 §23.6.1)
DEV_ID_MASK = 0xFFF
NRF52_FICR_INFO_PART = 0x10000100  # nRF52 part number, e.g. 0x52840 (PS v1.7 §4.4.1)
SESSION_OPTIONS: dict[str, object] = {
    "hide_programming_progress": True,
    "resume_on_disconnect": False,
    "auto_unlock": False,  # never let pyOCD mass-erase a protected chip behind our back
}


class SwdBackend:
    """One chip on one debug probe, driven through a pyOCD session (see ``FlashBackend``)."""

    def __init__(self, probe_uid: str, profile: Profile) -> None:
        if profile.swd is None:
            raise ProbeError(f"profile {profile.name} has no SWD transport")
        self._probe_uid = probe_uid
        self._profile = profile
        self._target_name = profile.swd.pyocd_target
        self._family = family_of(profile.mcu, profile.readout_protection.method)
        self._session: Any = None
        self._link_ok = True

    @property
    def capabilities(self) -> Capabilities:
        """Mass and page erase, RDP levels 0 and 1, UID read and reset through the debug port."""
        return Capabilities(mass_erase=True, page_erase=True, readout_protection_levels=(0, 1),
                            read_uid=True, reset_control=True, boot_pin_control=False)

    @property
    def location(self) -> str:
        """The probe's unique ID."""
        return self._probe_uid

    @property
    def _target(self) -> Any:
        if self._session is None:
            raise ProbeError(f"probe {self._probe_uid}: backend is not open")
        return self._session.target

    @contextmanager
    def _edge(self, operation: str, address: int | None = None, *,
              memory: bool = False) -> Iterator[None]:
        """Translate pyOCD errors; for ``memory`` operations a fault or a failed flash
        algorithm on a readout-protected chip becomes ``ReadoutProtected``."""
        try:
            yield
        except (pe.TransferFaultError, pe.FlashFailure) as exc:
            self._link_ok = False
            if memory and self.is_readout_protected():
                raise ReadoutProtected(operation) from exc
            raise translate(exc, operation, address) from exc
        except pe.Error as exc:
            self._link_ok = False
            raise translate(exc, operation, address) from exc

    def open(self) -> None:
        """Find the probe by unique ID, open a session on the profile's target and halt it."""
        if self._session is not None:
            return
        register_targets()
        route_pyocd_logging()
        target_name, options = self._target_name, dict(SESSION_OPTIONS)
        if self._family == "nrf52":  # a locked nRF52 hides its core: connect to the CTRL-AP only
            target_name = nrf52_lockable_target(target_name)
            options["allow_no_cores"] = True
        with self._edge("open"):
            # pyOCD's chooser prints coloured text to stdout and matches IDs by substring:
            # list the probes quietly and take the exact unique ID.
            probes = [probe for probe in ConnectHelper.get_all_connected_probes(
                blocking=False, unique_id=self._probe_uid, print_wait_message=False)
                if probe.unique_id == self._probe_uid]
            if not probes:
                raise ProbeError(f"no debug probe with unique ID {self._probe_uid}")
            session = Session(probes[0], options=options, target_override=target_name)
            try:
                session.open()
                if session.target.cores:
                    session.target.halt()
            except pe.Error:
                with suppress(pe.Error):  # release the probe; the first error is the one to see
                    session.close()
                raise
            self._session = session
            self._link_ok = True
        self._check_chip()

    def _check_chip(self) -> None:
        """Refuse a chip whose part number is not the profile's (pyOCD connects to any Cortex-M).

        STM32: DBGMCU DEV_ID, the number the ROM bootloader's Get ID answers (AN2606), which the
        profile's serial ``product_id`` names. nRF52: FICR INFO.PART, the part in hex digits
        (0x52840 for an nRF52840, PS v1.7 §4.4.1), which the profile's ``mcu`` names. A locked
        nRF52 shows no core and is checked once it has been erased and reopened.
        """
        identity = self._part_register()
        if identity is None or not self._target.cores:
            return
        name, address, mask, expected = identity
        with self._edge(f"read {name}", address):
            found = self._target.read32(address) & mask
        if found != expected:
            self.close()
            raise ChipMismatch(expected, found)

    def _part_register(self) -> tuple[str, int, int, int] | None:
        """(name, address, mask, the profile's value) of the chip's part-number register."""
        serial = self._profile.serial
        if self._family.startswith("stm32") and serial is not None:
            return "DEV_ID", DBGMCU_IDCODE, DEV_ID_MASK, serial.product_id
        mcu = self._profile.mcu.upper()
        if self._family == "nrf52" and mcu.startswith("NRF") and mcu[3:].isdigit():
            return "INFO.PART", NRF52_FICR_INFO_PART, 0xFFFFFFFF, int(mcu[3:], 16)
        return None

    def read_uid(self) -> bytes:
        """The factory unique ID from the profile's UID address."""
        uid = self._profile.chip_uid
        self._refuse_without_core("read UID")
        with self._edge("read UID", uid.base):
            return bytes(self._target.read_memory_block8(uid.base, uid.size_bytes))

    def _check_range(self, address: int, size: int) -> None:
        if size < 0 or not self._profile.flash.contains(address, address + size):
            raise AddressOutOfRange(address, size)

    def read(self, address: int, size: int, progress: ProgressCallback = no_progress) -> bytes:
        """Read flash in chunks; a protected chip raises ``ReadoutProtected``."""
        self._check_range(address, size)
        out = bytearray()
        for start in range(address, address + size, READ_CHUNK_BYTES):
            count = min(READ_CHUNK_BYTES, address + size - start)
            out += self._read_chunk(start, count, "read")
            progress(ProgressEvent(Operation.read, len(out), size))
        return bytes(out)

    def _read_chunk(self, address: int, size: int, operation: str) -> bytes:
        self._refuse_without_core(operation)
        with self._edge(operation, address, memory=True):
            return bytes(self._target.read_memory_block8(address, size))

    def is_readout_protected(self) -> bool:
        """Whether the chip reports readout protection active in its own registers."""
        with self._edge("read protection status"):
            if self._family == "nrf52":
                return bool(self._target.is_locked())
            return readout_protected(self._target, self._family)

    def _refuse_without_core(self, operation: str) -> None:
        """A locked nRF52 connects without a core: memory is out of the debugger's reach."""
        if not self._target.cores:
            raise ReadoutProtected(operation)

    def _refuse_if_protected(self, operation: str) -> None:
        """Debug-connected flash writes are refused (or silently dropped) under RDP level 1."""
        if self.is_readout_protected():
            raise ReadoutProtected(operation)

    def _flash(self, address: int) -> Any:
        region = self._target.memory_map.get_region_for_address(address)
        if region is None or not region.is_flash:
            raise AddressOutOfRange(address, 1)
        return region.flash

    def erase(self, ranges: Iterable[tuple[int, int]] | None = None,
              progress: ProgressCallback = no_progress) -> None:
        """Erase the sectors covering each half-open range, or the whole chip for ``None``."""
        geometry = self._profile.flash
        self._refuse_if_protected("erase")
        if ranges is None:
            flash = self._flash(geometry.base)
            with self._edge("mass erase", geometry.base, memory=True):
                flash.init(flash.Operation.ERASE)
                flash.erase_all()
                flash.cleanup()
            progress(ProgressEvent(Operation.erase, geometry.size_bytes, geometry.size_bytes))
            return
        sectors = sorted({s for start, end in ranges for s in self._sectors(start, end)})
        total = sum(size for _, size in sectors)
        done = 0
        flash = self._flash(geometry.base)
        with self._edge("erase", memory=True):
            flash.init(flash.Operation.ERASE)
            for start, size in sectors:
                with self._edge("erase", start, memory=True):
                    flash.erase_sector(start)
                done += size
                progress(ProgressEvent(Operation.erase, done, total))
            flash.cleanup()

    def _sectors(self, start: int, end: int) -> list[tuple[int, int]]:
        self._check_range(start, end - start)
        return self._profile.flash.erase_ranges(start, end)

    def program(self, segments: Iterable[MemorySegment],
                progress: ProgressCallback = no_progress) -> None:
        """Program erased flash page by page through pyOCD's flash API (the target's algorithm),
        loading the next page into the second RAM buffer while the chip programs the current one.
        """
        items = list(segments)
        for segment in items:
            self._check_range(segment.start, len(segment.data))
        total = sum(len(segment.data) for segment in items)
        if not items:
            return
        self._refuse_if_protected("program")
        flash = self._flash(items[0].start)
        page_size = flash.get_page_info(items[0].start).size
        pages = _pages(items, page_size)
        if not pages:
            return
        try:
            self._program_pages(flash, pages, total, progress)
        finally:
            for _, chunk in pages:  # our copies hold key material: zeroise them
                chunk[:] = bytes(len(chunk))
        progress(ProgressEvent(Operation.program, total, total))

    def _program_pages(self, flash: Any, pages: list[tuple[int, bytearray]], total: int,
                       progress: ProgressCallback) -> None:
        timeout_s = self._session.options.get("flash.timeout.program")
        buffers = 2 if flash.is_double_buffering_supported else 1
        done = 0
        with self._edge("program", pages[0][0], memory=True):
            flash.init(flash.Operation.PROGRAM)
            flash.load_page_buffer(0, *pages[0])
            for index, (address, chunk) in enumerate(pages):
                with self._edge("program", address, memory=True):
                    flash.start_program_page_with_buffer(index % buffers, address)
                    if buffers == 2 and index + 1 < len(pages):  # load the next page meanwhile
                        flash.load_page_buffer((index + 1) % 2, *pages[index + 1])
                    result = flash.wait_for_completion(timeout=timeout_s)
                    if result != 0:
                        raise pe.FlashProgramFailure("page program failed", address=address,
                                                     result_code=result)
                    if buffers == 1 and index + 1 < len(pages):
                        flash.load_page_buffer(0, *pages[index + 1])
                done = min(total, done + len(chunk))
                progress(ProgressEvent(Operation.program, done, total))
            flash.cleanup()

    def verify(self, segments: Iterable[MemorySegment],
               progress: ProgressCallback = no_progress) -> None:
        """Compare SHA-256 of read-back and expected data; name the first differing address."""
        items = list(segments)
        total = sum(len(segment.data) for segment in items)
        done = 0
        for segment in items:
            self._check_range(segment.start, len(segment.data))
            expected = memoryview(segment.data).cast("B")
            found = bytearray()
            try:
                for start in range(segment.start, segment.end, READ_CHUNK_BYTES):
                    count = min(READ_CHUNK_BYTES, segment.end - start)
                    found += self._read_chunk(start, count, "verify")
                    done += count
                    progress(ProgressEvent(Operation.verify, done, total))
                if not hmac.compare_digest(hashlib.sha256(found).digest(),
                                           hashlib.sha256(expected).digest()):
                    offset = next(i for i, (a, b) in enumerate(zip(expected, found, strict=True))
                                  if a != b)
                    raise VerifyMismatch(segment.start + offset, expected[offset], found[offset])
            finally:
                found[:] = bytes(len(found))  # the read-back holds key material: zeroise it

    def protect(self, level: int) -> None:
        """Set readout protection through the chip's registers, then reset so it takes effect."""
        if level not in self.capabilities.readout_protection_levels:
            raise FlashError(f"readout protection level {level} is not offered")
        target = self._target
        if self._family == "nrf52":
            self._protect_nrf52(level)
            return
        with self._edge("protect"):
            target.halt()
            PROTECTORS[self._family](target, level, time.monotonic)
            if self._family == "stm32l4":
                # OBL_LAUNCH resets the chip; the write's answer may be lost with it
                with suppress(pe.TransferError):
                    launch_option_load_stm32l4(target)
            target.reset_and_halt()

    def _protect_nrf52(self, level: int) -> None:
        """Level 1: UICR.APPROTECT through the NVMC; level 0: CTRL-AP ERASEALL (erases all).

        Either takes effect at the CTRL-AP reset that follows, after which the debug port shows
        a different chip (core hidden or back), so the session reconnects.
        """
        target = self._target
        with self._edge("protect"):
            if level == 0:
                if not target.mass_erase():  # ERASEALL, then the CTRL-AP reset
                    raise FlashError("nRF52 CTRL-AP mass erase did not complete")
            elif not target.is_locked():
                target.halt()
                protect_nrf52(target, level, time.monotonic)
                reset_nrf52(target.ctrl_ap)
        self._reconnect()

    def _reconnect(self) -> None:
        session, self._session = self._session, None
        with self._edge("reconnect"):
            session.close()
        self.open()

    def close(self) -> None:
        """Reset the chip so it runs its new firmware, and release the probe (always safe).

        After a link failure the reset is skipped: the chip may not answer, and waiting for it
        would only delay releasing the probe.
        """
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if self._link_ok and session.target.cores:
                session.target.reset()
        except pe.Error:
            pass  # the chip may be gone; closing must still release the probe
        finally:
            with self._edge("close"):
                session.close()


def _pages(segments: list[MemorySegment], page_size: int) -> list[tuple[int, bytearray]]:
    """Whole program pages covering the segments, 0xFF where no segment has data.

    pyOCD's buffered page program always writes a full page, so every page is padded, and a
    page two segments share is written once.
    """
    pages: dict[int, bytearray] = {}
    for segment in segments:
        data = memoryview(segment.data).cast("B")
        address = segment.start
        while len(data):
            page = address - address % page_size
            take = min(len(data), page + page_size - address)
            buffer = pages.setdefault(page, bytearray(b"\xff" * page_size))
            buffer[address - page:address - page + take] = data[:take]
            address += take
            data = data[take:]
    return sorted(pages.items())
