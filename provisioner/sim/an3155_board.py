"""A virtual STM32 in its ROM bootloader (AN3155), served on a real pseudo-terminal."""

from __future__ import annotations

import os
import secrets
import select
import threading
import time
import tty

from hw_profiles import Profile
from provisioner.flash.serial_rom import protocol as p
from provisioner.sim.faults import BoardFaults

__all__ = ["BoardFaults", "VirtualSerialBoard"]

IDLE_ABANDON_S = 1.0  # a half-received command is dropped after this much silence (generous: a
# loaded CI machine can starve the host thread between the frames of one command)
GARBLE_BYTE = 0xA5
SPIN_S = 0.0005  # last part of a throttling wait is spun: time.sleep overshoots by ~0.1 ms
# Option bytes block address per family (RM0008 §2.5, RM0383 §3.6, RM0394 §3.4).
_OPTION_ADDRESS = {"STM32F1": 0x1FFFF800, "STM32F4": 0x1FFFC000, "STM32L4": 0x1FFF7800}
_RDP_UNPROTECTED = 0xA5  # RDP byte at level 0 on STM32F1 (RM0008 §2.5)


class _Stopped(Exception):
    """The board is being stopped."""


class _Abandoned(Exception):
    """The host went quiet mid-command; wait for the next command."""


class _PowerLoss(Exception):
    """The chip restarted; it needs a new 0x7F before it answers."""


class VirtualSerialBoard:
    """The profile's flash (erased 0xFF), chip UID, option bytes and readout protection.

    ``throttle_baud`` makes each byte take as long as on a real line (``bits_per_byte`` = 11
    for 8E1, 10 for 8N1); ``extended_erase`` overrides the Erase command the chip offers.
    """

    def __init__(self, profile: Profile, *, chip_uid: bytes, faults: BoardFaults | None = None,
                 throttle_baud: int | None = None, bits_per_byte: int = 11,
                 extended_erase: bool | None = None) -> None:
        if profile.serial is None:
            raise ValueError(f"profile {profile.name} has no serial bootloader")
        if len(chip_uid) != profile.chip_uid.size_bytes:
            raise ValueError(f"chip_uid must be {profile.chip_uid.size_bytes} bytes")
        self.profile = profile
        self.chip_uid = bytes(chip_uid)
        self.faults = faults or BoardFaults()
        self.readout_protected = False
        self.write_protected: set[int] = set()
        self._flash = bytearray(b"\xff" * profile.flash.size_bytes)
        self._ram = bytearray(profile.ram.size_bytes)
        legacy = profile.mcu.startswith("STM32F1") if extended_erase is None else not extended_erase
        self._erase = p.Command.erase if legacy else p.Command.extended_erase
        self._version = 0x22 if legacy else 0x31
        self._option_address = _OPTION_ADDRESS.get(profile.mcu[:7])
        self._byte_s = bits_per_byte / throttle_baud if throttle_baud else 0.0
        self._rx_at = self._tx_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._pending = bytearray()
        self._chip_generation = 0  # bumped by replace_chip: the new chip needs its own sync
        self._served_generation = 0
        self.port = ""

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> str:
        """Open a pseudo-terminal, serve it in a thread and return the tty path for hosts."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"an3155 {self.port}",
                                        daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop serving and close the pseudo-terminal."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def replace_chip(self, chip_uid: bytes | None = None) -> bytes:
        """Swap in a new chip behind the same port, as an operator swaps boards; return its UID.

        The new chip has blank flash and RAM, no readout or write protection, and answers only
        after its own 0x7F sync. ``chip_uid`` defaults to random bytes of the profile's size.
        """
        size = self.profile.chip_uid.size_bytes
        uid = bytes(chip_uid) if chip_uid is not None else secrets.token_bytes(size)
        if len(uid) != size:
            raise ValueError(f"chip_uid must be {size} bytes")
        with self._lock:
            self.chip_uid = uid
            self._flash[:] = b"\xff" * len(self._flash)
            self._ram[:] = bytes(len(self._ram))
            self.readout_protected = False
            self.write_protected.clear()
            self._chip_generation += 1
        return uid

    def flash_bytes(self, address: int, size: int) -> bytes:
        """Return a copy of flash ``[address, address+size)`` (for tests)."""
        offset = address - self.profile.flash.base
        with self._lock:
            return bytes(self._flash[offset:offset + size])

    @property
    def option_bytes(self) -> bytes:
        """RDP byte and its complement, then user byte and complement (AN3155 Get Version)."""
        rdp = 0x00 if self.readout_protected else _RDP_UNPROTECTED
        return bytes((rdp, rdp ^ 0xFF, 0xFF, 0x00))

    # --- serving --------------------------------------------------------------------------

    def _serve(self) -> None:
        synced = False
        while not self._stop.is_set():
            try:
                if not synced:
                    synced = self._read(1, idle=False)[0] == p.SYNC
                    if synced:
                        self._ack()
                    continue
                self._command()
            except _Abandoned:
                continue
            except _PowerLoss:
                synced = False
            except _Stopped:
                return

    def _command(self) -> None:
        first = self._read(1, idle=False)[0]
        code = p.decode_command_frame(bytes((first, self._read(1, idle=False)[0])))
        faults = self.faults
        if code is None or code not in self._commands():
            self._nack()
            return
        if faults.take("nack_command", code):
            self._nack()
            return
        if faults.take("garble_command", code):
            self._send(bytes((GARBLE_BYTE,)))
            return
        if faults.take("drop_command", code):
            return
        if faults.take("stall_command", code):
            self._stop.wait(faults.stall_s)
            self._pending.clear()
            return
        if self.readout_protected and code in (p.Command.read_memory, p.Command.write_memory,
                                               p.Command.go, self._erase):
            self._nack()
            return
        self._ack()
        handler = {
            p.Command.get: self._get, p.Command.get_version: self._get_version,
            p.Command.get_id: self._get_id, p.Command.read_memory: self._read_memory,
            p.Command.go: self._go, p.Command.write_memory: self._write_memory,
            p.Command.erase: self._legacy_erase, p.Command.extended_erase: self._extended_erase,
            p.Command.write_protect: self._write_protect,
            p.Command.write_unprotect: self._write_unprotect,
            p.Command.readout_protect: self._readout_protect,
            p.Command.readout_unprotect: self._readout_unprotect,
        }[p.Command(code)]
        handler()

    def _commands(self) -> frozenset[int]:
        legacy_or_ext = {self._erase}
        others = set(p.Command) - {p.Command.erase, p.Command.extended_erase}
        return frozenset(int(c) for c in others | legacy_or_ext)

    def _get(self) -> None:
        info = p.BootloaderInfo(self._version, self._commands())
        self._send(p.encode_get_reply(info) + bytes((p.ACK,)))

    def _get_version(self) -> None:
        self._send(bytes((self._version,)) + self.option_bytes[:2] + bytes((p.ACK,)))

    def _get_id(self) -> None:
        assert self.profile.serial is not None
        self._send(p.encode_get_id_reply(self.profile.serial.product_id) + bytes((p.ACK,)))

    def _receive_address(self) -> int | None:
        address = p.decode_address_frame(self._read(5))
        if address is None:
            self._nack()
        return address

    def _read_memory(self) -> None:
        address = self._receive_address()
        if address is None:
            return
        memory = self._memory(address)
        if memory is None:
            self._nack()
            return
        self._ack()
        size = p.decode_read_length_frame(self._read(2))
        buffer, offset = memory
        if size is None or offset + size > len(buffer):
            self._nack()
            return
        with self._lock:
            data = bytes(buffer[offset:offset + size])
        self._send(bytes((p.ACK,)) + data)

    def _go(self) -> None:
        address = self._receive_address()
        if address is None:
            return
        if self._memory(address) is None:
            self._nack()
            return
        self._ack()
        raise _PowerLoss  # the application runs; the bootloader is gone until a reset

    def _write_memory(self) -> None:
        address = self._receive_address()
        if address is None:
            return
        memory = self._memory(address)
        if memory is None:
            self._nack()
            return
        self._ack()
        head = self._read(1)
        data = p.decode_data_frame(head + self._read(head[0] + 2))
        buffer, offset = memory
        if (data is None or len(data) % 4 or offset + len(data) > len(buffer)
                or self.faults.take("nack_write_at", address)
                or (buffer is self._flash and self._touches_protected(address, len(data)))):
            self._nack()
            return
        if self.faults.take("power_loss_at", address):
            data = data[:self.faults.power_loss_after_bytes]
            self._program(buffer, offset, data)
            raise _PowerLoss
        self._program(buffer, offset, data)
        self._ack()

    def _program(self, buffer: bytearray, offset: int, data: bytes) -> None:
        with self._lock:
            if buffer is self._flash:  # flash bits only go from 1 to 0 until erased
                for i, byte in enumerate(data):
                    buffer[offset + i] &= byte
            else:
                buffer[offset:offset + len(data)] = data

    def _legacy_erase(self) -> None:
        count = self._read(1)[0]
        if count == p.LEGACY_MASS_ERASE:
            self._finish_erase(None, self._read(1) == b"\x00")
            return
        body = bytes((count,)) + self._read(count + 2)
        self._finish_erase(list(body[1:-1]), p.xor(body) == 0)

    def _extended_erase(self) -> None:
        head = self._read(2)
        count = int.from_bytes(head, "big")
        if count >= 0xFFF0:
            ok = self._read(1)[0] == p.xor(head) and count in (0xFFFF, 0xFFFE, 0xFFFD)
            self._finish_erase(None, ok)
            return
        body = head + self._read(2 * (count + 1) + 1)
        pages = [int.from_bytes(body[i:i + 2], "big") for i in range(2, len(body) - 1, 2)]
        self._finish_erase(pages, p.xor(body) == 0)

    def _finish_erase(self, pages: list[int] | None, ok: bool) -> None:
        sectors = self.profile.flash.sectors
        numbers = range(len(sectors)) if pages is None else pages
        if (not ok or any(n >= len(sectors) for n in numbers)
                or any(n in self.write_protected for n in numbers)):
            self._nack()
            return
        base = self.profile.flash.base
        with self._lock:
            for number in numbers:
                start, size = sectors[number]
                self._flash[start - base:start - base + size] = b"\xff" * size
        self._ack()

    def _write_protect(self) -> None:
        count = self._read(1)[0]
        body = bytes((count,)) + self._read(count + 2)
        if p.xor(body) != 0 or any(n >= len(self.profile.flash.sectors) for n in body[1:-1]):
            self._nack()
            return
        self.write_protected.update(body[1:-1])
        self._ack()
        raise _PowerLoss  # option bytes reload: system reset (AN3155 §3.9)

    def _write_unprotect(self) -> None:
        self.write_protected.clear()
        self._ack()
        raise _PowerLoss

    def _readout_protect(self) -> None:
        self.readout_protected = True
        self._ack()
        raise _PowerLoss

    def _readout_unprotect(self) -> None:
        with self._lock:  # removing RDP mass-erases flash (RM0008 §2.5.2)
            self._flash[:] = b"\xff" * len(self._flash)
            self._ram[:] = bytes(len(self._ram))
        self.readout_protected = False
        self._ack()
        raise _PowerLoss

    def _memory(self, address: int) -> tuple[bytearray, int] | None:
        regions: list[tuple[int, bytearray]] = [
            (self.profile.flash.base, self._flash), (self.profile.ram.base, self._ram),
            (self.profile.chip_uid.base, bytearray(self.chip_uid)),
        ]
        if self._option_address is not None:
            regions.append((self._option_address, bytearray(self.option_bytes)))
        for base, buffer in regions:
            if base <= address < base + len(buffer):
                return buffer, address - base
        return None

    def _touches_protected(self, address: int, size: int) -> bool:
        return any(n in self.write_protected and start < address + size and address < start + sz
                   for n, (start, sz) in enumerate(self.profile.flash.sectors))

    # --- the wire -------------------------------------------------------------------------

    def _ack(self) -> None:
        self._send(bytes((p.ACK,)))

    def _nack(self) -> None:
        self._send(bytes((p.NACK,)))

    def _send(self, data: bytes) -> None:
        if self._byte_s:
            now = time.monotonic()
            self._tx_at = max(now, self._tx_at) + len(data) * self._byte_s
            _pace(self._tx_at)
        os.write(self._master, data)

    def _read(self, size: int, *, idle: bool = True) -> bytes:
        """Read ``size`` bytes; mid-command (``idle``) silence abandons the command."""
        while len(self._pending) < size:
            if self._stop.is_set():
                raise _Stopped
            if self._served_generation != self._chip_generation:  # another chip on the line
                self._served_generation = self._chip_generation
                raise _PowerLoss
            ready, _, _ = select.select([self._master], [], [], IDLE_ABANDON_S if idle else 0.1)
            if not ready:
                if idle:
                    self._pending.clear()
                    raise _Abandoned
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                chunk = b""
            if self._byte_s and chunk:
                now = time.monotonic()
                self._rx_at = max(now, self._rx_at) + len(chunk) * self._byte_s
                _pace(self._rx_at)
            self._pending += chunk
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data


def _pace(deadline: float) -> None:
    """Wait until ``deadline`` (monotonic s): sleep the bulk, spin the rest (sleep overshoots)."""
    remaining = deadline - time.monotonic()
    if remaining > SPIN_S:
        time.sleep(remaining - SPIN_S)
    while time.monotonic() < deadline:
        pass
