"""SerialRomBackend: the FlashBackend protocol over the STM32 ROM bootloader (AN3155)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable

from hw_profiles import Profile
from hw_profiles.profile import SerialTransport
from provisioner.errors import (
    AddressOutOfRange,
    BootloaderNack,
    ChipMismatch,
    FlashError,
    GarbledReply,
    LinkTimeout,
    OperatorActionRequired,
    ReadoutProtected,
    VerifyMismatch,
)
from provisioner.flash import reset
from provisioner.flash.backend import (
    Capabilities,
    MemorySegment,
    Operation,
    ProgressCallback,
    ProgressEvent,
    no_progress,
)
from provisioner.flash.serial_rom import protocol as p
from provisioner.flash.serial_rom.transport import Parity, SerialLink, is_pseudo_terminal

SYNC_ATTEMPTS = 6
SYNC_TIMEOUT_S = 0.5  # longer than a responder's mid-command idle abandon
ACK_TIMEOUT_S = 1.0
WRITE_TIMEOUT_S = 1.0
PAGE_ERASE_TIMEOUT_S = 2.0
MASS_ERASE_TIMEOUT_S = 40.0  # F4 mass erase: up to 32 s (DS10314 t_ME)
PROTECT_TIMEOUT_S = 5.0
RESYNC_DELAY_S = 0.05


class SerialRomBackend:
    """A chip in its ROM bootloader on a serial port.

    ``parity`` overrides the profile's (a pseudo-terminal carries no parity, so one is
    opened 8N1 unless told otherwise); ``operator_prompt`` is called when BOOT0/NRST are not
    wired and a human must restart the chip.
    """

    def __init__(self, port: str, profile: Profile, *, parity: str | None = None,
                 baud: int | None = None,
                 operator_prompt: Callable[[str], None] | None = None) -> None:
        if profile.serial is None:
            raise FlashError(f"profile {profile.name} has no serial bootloader transport")
        self._profile = profile
        self._serial: SerialTransport = profile.serial
        pseudo = is_pseudo_terminal(port)
        chosen = parity or ("none" if pseudo else profile.serial.parity)
        if chosen not in ("even", "none"):
            raise ValueError(f"parity must be 'even' or 'none', not {chosen!r}")
        self._parity: Parity = "even" if chosen == "even" else "none"
        self._lines = not pseudo  # a pty has no modem lines (ioctl fails with ENOTTY)
        self._link = SerialLink(port, baud or profile.serial.baud, self._parity)
        self._prompt = operator_prompt
        self._info: p.BootloaderInfo | None = None
        self.version: int | None = None
        self.product_id: int | None = None

    @property
    def location(self) -> str:
        """The serial port path."""
        return self._link.port

    @property
    def capabilities(self) -> Capabilities:
        """Page and mass erase, RDP level 0/1, UID read; pin control when the profile wires it."""
        wired = self._lines and reset.is_wired(self._serial)
        return Capabilities(mass_erase=True, page_erase=True, readout_protection_levels=(0, 1),
                            read_uid=True, reset_control=wired, boot_pin_control=wired)

    def open(self) -> None:
        """Open the port, restart into the bootloader, sync, Get, Get ID (checks the PID).

        Raises:
            ChipMismatch: the chip's PID is not the profile's.
            OperatorActionRequired: the chip did not answer and the pins are not wired.
        """
        self._link.close()
        self._link.open()
        if self._lines and (reset.is_wired(self._serial) or self._prompt is not None):
            reset.enter_bootloader(self._link, self._serial, self._prompt)
        try:
            self._sync()
        except LinkTimeout as exc:
            if self._lines and not reset.is_wired(self._serial):
                raise OperatorActionRequired(reset.ENTER_BOOTLOADER) from exc
            raise
        self._info = self._get()
        self.version = self._info.version
        self.product_id = self._get_id()
        if self.product_id != self._serial.product_id:
            raise ChipMismatch(self._serial.product_id, self.product_id)

    def close(self) -> None:
        """Restart the chip from flash when the pins are wired, then release the port."""
        try:
            if self._info is not None and self._lines and reset.is_wired(self._serial):
                reset.run_application(self._link, self._serial, None)
        finally:
            self._info = None
            self._link.close()

    def read_uid(self) -> bytes:
        """Read the factory unique ID at the profile's chip_uid address."""
        region = self._profile.chip_uid
        return self._read_memory(region.base, region.size_bytes, "read_uid")

    def read(self, address: int, size: int, progress: ProgressCallback = no_progress) -> bytes:
        """Read ``size`` bytes at ``address`` in blocks of up to 256 bytes."""
        return self._read_memory(address, size, "read", progress, Operation.read)

    def erase(self, ranges: Iterable[tuple[int, int]] | None = None,
              progress: ProgressCallback = no_progress) -> None:
        """Erase the pages/sectors covering each (start, end); None mass-erases the chip."""
        info = self._require_info()
        flash = self._profile.flash
        if ranges is None:
            progress(ProgressEvent(Operation.erase, 0, flash.size_bytes))
            self._erase(info.erase_command, None, MASS_ERASE_TIMEOUT_S)
            progress(ProgressEvent(Operation.erase, flash.size_bytes, flash.size_bytes))
            return
        index = {start: number for number, (start, _) in enumerate(flash.sectors)}
        pages: dict[int, int] = {}
        for start, end in ranges:
            if not flash.contains(start, end):
                raise AddressOutOfRange(start, end - start)
            for sector_start, size in flash.erase_ranges(start, end):
                pages[index[sector_start]] = size
        total = sum(pages.values())
        progress(ProgressEvent(Operation.erase, 0, total))
        numbers = sorted(pages)
        batch = 255 if info.erase_command is p.Command.erase else 0xFFF0
        for first in range(0, len(numbers), batch):
            chunk = numbers[first:first + batch]
            timeout_s = PAGE_ERASE_TIMEOUT_S * sum(max(1, pages[n] // 16384) for n in chunk)
            self._erase(info.erase_command, chunk, timeout_s)
            progress(ProgressEvent(Operation.erase, sum(pages[n] for n in numbers[:first + batch]),
                                   total))

    def program(self, segments: Iterable[MemorySegment],
                progress: ProgressCallback = no_progress) -> None:
        """Write each segment in blocks of up to 256 bytes (padded to words with 0xFF)."""
        segs = self._checked(segments)
        total = sum(len(s.data) for s in segs)
        done = 0
        progress(ProgressEvent(Operation.program, 0, total))
        for seg in segs:
            view = memoryview(seg.data)
            for address, size in p.blocks(seg.start, len(seg.data)):
                chunk = view[address - seg.start:address - seg.start + size]
                self._write_block(address, chunk)
                done += size
                progress(ProgressEvent(Operation.program, done, total))

    def verify(self, segments: Iterable[MemorySegment],
               progress: ProgressCallback = no_progress) -> None:
        """Compare each segment's SHA-256 with the read-back; name the first differing address."""
        segs = self._checked(segments)
        total = sum(len(s.data) for s in segs)
        done = 0
        for seg in segs:
            def step(event: ProgressEvent, base: int = done) -> None:
                progress(ProgressEvent(Operation.verify, base + event.done_bytes, total))
            found = self._read_memory(seg.start, len(seg.data), "verify", step, Operation.verify)
            if hashlib.sha256(found).digest() != hashlib.sha256(seg.data).digest():
                offset = next(i for i, (a, b) in enumerate(zip(seg.data, found, strict=True))
                              if a != b)
                raise VerifyMismatch(seg.start + offset, seg.data[offset], found[offset])
            done += len(seg.data)

    def protect(self, level: int) -> None:
        """Set RDP level 1 (Readout Protect) or 0 (Readout Unprotect: mass-erases); re-sync."""
        if level not in (0, 1):
            raise FlashError(f"readout protection level {level} is not supported over AN3155")
        command = p.Command.readout_protect if level else p.Command.readout_unprotect
        name = command.name
        self._send_command(command, name)
        reply = self._link.read(1, PROTECT_TIMEOUT_S if level else MASS_ERASE_TIMEOUT_S,
                                name, "after the operation")
        p.check_ack(reply, name, "after the operation")
        self._resync()

    def write_unprotect(self) -> None:
        """Remove write protection from every sector (Write Unprotect 0x73); re-sync."""
        self._send_command(p.Command.write_unprotect, "write_unprotect")
        reply = self._link.read(1, PROTECT_TIMEOUT_S, "write_unprotect", "after the operation")
        p.check_ack(reply, "write_unprotect", "after the operation")
        self._resync()

    def get_version(self) -> tuple[int, bytes]:
        """Return the bootloader version and the two option bytes Get Version (0x01) reports."""
        self._require_info()
        self._send_command(p.Command.get_version, "get_version")
        reply = self._link.read(4, ACK_TIMEOUT_S, "get_version", "reading the reply")
        p.check_ack(reply[3:], "get_version", "after the reply")
        return reply[0], reply[1:3]

    def go(self, address: int) -> None:
        """Jump to the code at ``address`` (Go 0x21); the bootloader stops answering."""
        self._send_command(p.Command.go, "go", address)
        self._send_address("go", address)
        self._info = None

    # --- protocol steps ------------------------------------------------------------------

    def _sync(self) -> None:
        """Send 0x7F until the chip answers; a NACK means it was already synced (AN3155 §2)."""
        last: FlashError = LinkTimeout("sync", "after 0x7F")
        for _ in range(SYNC_ATTEMPTS):
            self._link.discard_input()
            self._link.write(bytes((p.SYNC,)))
            try:
                reply = self._link.read(1, SYNC_TIMEOUT_S, "sync", "after 0x7F")
            except LinkTimeout as exc:
                last = exc  # a lone 0x7F may have been taken as a command's first byte
                continue
            if reply[0] in (p.ACK, p.NACK):
                return
            last = GarbledReply("sync", "after 0x7F", "ACK 0x79 or NACK 0x1F", reply)
        raise last

    def _resync(self) -> None:
        time.sleep(RESYNC_DELAY_S)
        self._sync()
        self._info = self._get()

    def _get(self) -> p.BootloaderInfo:
        self._send_command(p.Command.get, "get")
        count = self._link.read(1, ACK_TIMEOUT_S, "get", "reading the length")
        rest = self._link.read(count[0] + 2, ACK_TIMEOUT_S, "get", "reading the reply")
        p.check_ack(rest[-1:], "get", "after the reply")
        return p.decode_get_reply(count + rest[:-1])

    def _get_id(self) -> int:
        self._send_command(p.Command.get_id, "get_id")
        count = self._link.read(1, ACK_TIMEOUT_S, "get_id", "reading the length")
        rest = self._link.read(count[0] + 2, ACK_TIMEOUT_S, "get_id", "reading the reply")
        p.check_ack(rest[-1:], "get_id", "after the reply")
        return p.decode_get_id_reply(count + rest[:-1])

    def _send_command(self, command: p.Command, name: str, address: int | None = None) -> None:
        self._link.write(p.command_frame(command))
        reply = self._link.read(1, ACK_TIMEOUT_S, name, "after the command", address)
        try:
            p.check_ack(reply, name, "after the command", address)
        except BootloaderNack as exc:
            if command in (p.Command.read_memory, p.Command.write_memory,
                           p.Command.erase, p.Command.extended_erase, p.Command.go):
                raise ReadoutProtected(name) from exc  # AN3155: refused while RDP is active
            raise

    def _send_address(self, name: str, address: int) -> None:
        self._link.write(p.address_frame(address))
        reply = self._link.read(1, ACK_TIMEOUT_S, name, "after the address", address)
        p.check_ack(reply, name, "after the address", address)

    def _read_memory(self, address: int, size: int, name: str,
                     progress: ProgressCallback = no_progress,
                     operation: Operation = Operation.read) -> bytes:
        self._require_info()
        out = bytearray()
        for block_address, block_size in p.blocks(address, size):
            self._send_command(p.Command.read_memory, name, block_address)
            self._send_address(name, block_address)
            self._link.write(p.read_length_frame(block_size))
            reply = self._link.read(1, ACK_TIMEOUT_S, name, "after the length", block_address)
            p.check_ack(reply, name, "after the length", block_address)
            out += self._link.read(block_size, ACK_TIMEOUT_S, name, "reading data",
                                   block_address)
            progress(ProgressEvent(operation, len(out), size))
        return bytes(out)

    def _write_block(self, address: int, chunk: memoryview) -> None:
        data = bytes(chunk)
        if len(data) % 4:
            data += b"\xff" * (4 - len(data) % 4)  # AN3155 §3.6: N+1 must be a multiple of 4
        self._send_command(p.Command.write_memory, "write", address)
        self._send_address("write", address)
        self._link.write(p.data_frame(data))
        reply = self._link.read(1, WRITE_TIMEOUT_S, "write", "after the data", address)
        p.check_ack(reply, "write", "after the data", address)

    def _erase(self, command: p.Command, pages: list[int] | None, timeout_s: float) -> None:
        name = command.name
        address = None if pages is None else self._profile.flash.sectors[pages[0]][0]
        self._send_command(command, name, address)
        frame = (p.extended_erase_frame(pages) if command is p.Command.extended_erase
                 else p.legacy_erase_frame(pages))
        self._link.write(frame)
        reply = self._link.read(1, timeout_s, name, "after the page list", address)
        p.check_ack(reply, name, "after the page list", address)

    def _require_info(self) -> p.BootloaderInfo:
        if self._info is None:
            raise FlashError(f"{self.location}: the bootloader session is not open")
        return self._info

    def _checked(self, segments: Iterable[MemorySegment]) -> list[MemorySegment]:
        self._require_info()
        segs = list(segments)
        for seg in segs:
            if not self._profile.flash.contains(seg.start, seg.end):
                raise AddressOutOfRange(seg.start, len(seg.data))
        return segs

