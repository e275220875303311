"""An SW-DP with an AHB-AP (ADIv5 §B2, §C2) over the emulated bus, vendor APs, link faults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from provisioner.sim.bus import Bus, BusFault

DPIDR_CM3 = 0x1BA01477
AHB_AP_IDR_CM3 = 0x24770011  # AHB-AP, Arm, variant 1: 4 KiB TAR auto-increment wrap
ROM_TABLE_BASE = 0xE00FF000

DP_IDR_ABORT, DP_CTRL_STAT, DP_SELECT, DP_RDBUFF = 0x0, 0x4, 0x8, 0xC
CSYSPWRUPACK, CSYSPWRUPREQ = 1 << 31, 1 << 30
CDBGPWRUPACK, CDBGPWRUPREQ = 1 << 29, 1 << 28
CDBGRSTACK, CDBGRSTREQ = 1 << 27, 1 << 26
STICKYERR, STICKYCMP, STICKYORUN, WDATAERR = 1 << 5, 1 << 4, 1 << 1, 1 << 7
ABORT_STKCMPCLR, ABORT_STKERRCLR, ABORT_WDERRCLR, ABORT_ORUNERRCLR = 1 << 1, 1 << 2, 1 << 3, 1 << 4

CSW, TAR, DRW, CFG, BASE, IDR = 0x00, 0x04, 0x0C, 0xF4, 0xF8, 0xFC
CSW_SIZE_MASK = 0x7
CSW_ADDRINC_SHIFT = 4
CSW_DEVICEEN = 1 << 6
CSW_WRITABLE = 0xFF00_0F37  # Prot, MasterType, AddrInc, Size (ADIv5 Table C2-6)
TAR_WRAP = 0x1000


class AckFault(Exception):
    """The target answered FAULT (a sticky error is set)."""


class AckWait(Exception):
    """The target kept answering WAIT: the transfer never completed."""


class NoAck(Exception):
    """Nothing answered on the wire (no target, no power, broken cable)."""


@dataclass(slots=True)
class BoardFaults:
    """Faults to inject: a bus error or an endless WAIT at one address, a stall after N AP
    transfers, a dead link, power lost after N bytes of flash were programmed."""

    fault_address: int | None = None
    stall_address: int | None = None
    stall_after_transfers: int | None = None
    no_target: bool = False
    power_loss_after_bytes: int | None = None


class AccessPortDevice(Protocol):
    """A vendor access port (not a MEM-AP) behind the DP: word registers by address."""

    def read(self, reg: int) -> int:
        """Return the register at ``reg`` (bank | address, IDR at 0xFC)."""
        ...

    def write(self, reg: int, value: int) -> None:
        """Write the register at ``reg``."""
        ...


def _always() -> bool:
    return True


class SwDap:
    """DP registers, AP 0 (AHB-AP) and its MEM-AP transfers onto ``bus``, further APs by number.

    ``mem_ap_enabled`` answers whether the AHB-AP may reach the bus now; while it says no,
    CSW reads DeviceEn clear and every memory transfer answers FAULT (a chip's debug lock).
    """

    def __init__(self, bus: Bus, faults: BoardFaults | None = None, *,
                 aps: dict[int, AccessPortDevice] | None = None,
                 mem_ap_enabled: Callable[[], bool] = _always) -> None:
        self._bus = bus
        self.faults = faults or BoardFaults()
        self._aps = dict(aps or {})
        self._mem_ap_enabled = mem_ap_enabled
        self._ctrl_stat = 0
        self._select = 0
        self._rdbuff = 0
        self._csw = 0x23000002 | CSW_DEVICEEN
        self._tar = 0
        self.ap_transfers = 0

    # --- DP ----------------------------------------------------------------------------------

    def read_dp(self, addr: int) -> int:
        """Read DPIDR, CTRL/STAT, RESEND/SELECT (reads as 0) or RDBUFF."""
        self._check_link()
        if addr == DP_IDR_ABORT:
            return DPIDR_CM3
        if addr == DP_CTRL_STAT:
            return self._ctrl_stat
        if addr == DP_RDBUFF:
            return self._rdbuff
        return 0

    def write_dp(self, addr: int, value: int) -> None:
        """Write ABORT, CTRL/STAT (power-up requests are acknowledged at once) or SELECT."""
        self._check_link()
        if addr == DP_IDR_ABORT:
            if value & ABORT_STKERRCLR:
                self._ctrl_stat &= ~STICKYERR
            if value & ABORT_STKCMPCLR:
                self._ctrl_stat &= ~STICKYCMP
            if value & ABORT_WDERRCLR:
                self._ctrl_stat &= ~WDATAERR
            if value & ABORT_ORUNERRCLR:
                self._ctrl_stat &= ~STICKYORUN
        elif addr == DP_CTRL_STAT:
            sticky = self._ctrl_stat & (STICKYERR | STICKYCMP | STICKYORUN | WDATAERR)
            requests = value & 0x5F00_0F0D & ~(CSYSPWRUPACK | CDBGPWRUPACK | CDBGRSTACK)
            acks = (CSYSPWRUPACK if requests & CSYSPWRUPREQ else 0) | (
                CDBGPWRUPACK if requests & CDBGPWRUPREQ else 0) | (
                CDBGRSTACK if requests & CDBGRSTREQ else 0)
            self._ctrl_stat = requests | acks | sticky
        elif addr == DP_SELECT:
            self._select = value

    def _check_link(self) -> None:
        if self.faults.no_target:
            raise NoAck("no ACK from the target")

    # --- AP ----------------------------------------------------------------------------------

    def _begin_ap(self) -> tuple[int, int]:
        self._check_link()
        if self._ctrl_stat & STICKYERR:
            raise AckFault("sticky error set")
        stall = self.faults.stall_after_transfers
        if stall is not None and self.ap_transfers >= stall:
            raise AckWait("the AP answers WAIT indefinitely")
        self.ap_transfers += 1
        return self._select >> 24, self._select & 0xF0

    def read_ap(self, addr: int) -> int:
        """Read an AP register of the AP and bank chosen by SELECT."""
        apsel, bank = self._begin_ap()
        reg = bank | (addr & 0xC)
        if apsel != 0:
            device = self._aps.get(apsel)
            value = device.read(reg) if device is not None else 0
        elif reg == CSW:
            value = self._csw if self._mem_ap_enabled() else self._csw & ~CSW_DEVICEEN
        elif reg == TAR:
            value = self._tar
        elif reg == DRW:
            value = self._memory_read(self._tar, increment=True)
        elif 0x10 <= reg < 0x20:
            value = self._memory_read((self._tar & ~0xF) | (reg & 0xC), increment=False)
        elif reg == IDR:
            value = AHB_AP_IDR_CM3
        elif reg == BASE:
            value = ROM_TABLE_BASE | 0x3
        else:
            value = 0
        self._rdbuff = value
        return value

    def write_ap(self, addr: int, value: int) -> None:
        """Write an AP register of the AP and bank chosen by SELECT."""
        apsel, bank = self._begin_ap()
        reg = bank | (addr & 0xC)
        if apsel != 0:
            device = self._aps.get(apsel)
            if device is not None:
                device.write(reg, value)
            return
        if reg == CSW:
            size = value & CSW_SIZE_MASK
            size = size if size <= 2 else 2
            self._csw = (value & CSW_WRITABLE & ~CSW_SIZE_MASK) | size | CSW_DEVICEEN
        elif reg == TAR:
            self._tar = value & 0xFFFFFFFF
        elif reg == DRW:
            self._memory_write(self._tar, value, increment=True)
        elif 0x10 <= reg < 0x20:
            self._memory_write((self._tar & ~0xF) | (reg & 0xC), value, increment=False)

    # --- MEM-AP transfers ------------------------------------------------------------------

    def _size_bytes(self) -> int:
        return 1 << (self._csw & CSW_SIZE_MASK)

    def _advance(self, size: int) -> None:
        if (self._csw >> CSW_ADDRINC_SHIFT) & 0x3:
            wrapped = ((self._tar & (TAR_WRAP - 1)) + size) & (TAR_WRAP - 1)
            self._tar = (self._tar & ~(TAR_WRAP - 1)) | wrapped

    def _bus_fault(self, address: int) -> AckFault:
        self._ctrl_stat |= STICKYERR
        return AckFault(f"bus error at 0x{address:08X}")

    def _check_address(self, address: int) -> None:
        if not self._mem_ap_enabled():
            raise self._bus_fault(address)
        if address == self.faults.stall_address:
            raise AckWait(f"the AP answers WAIT indefinitely at 0x{address:08X}")
        if address == self.faults.fault_address:
            raise self._bus_fault(address)

    def _memory_read(self, address: int, *, increment: bool) -> int:
        size = self._size_bytes()
        lane = address & 3 & ~(size - 1)
        self._check_address(address)
        try:
            value = self._bus.read(address & ~(size - 1), size)
        except BusFault as exc:
            raise self._bus_fault(address) from exc
        if increment:
            self._advance(size)
        return (value << (8 * lane)) & 0xFFFFFFFF

    def _memory_write(self, address: int, value: int, *, increment: bool) -> None:
        size = self._size_bytes()
        lane = address & 3 & ~(size - 1)
        self._check_address(address)
        data = (value >> (8 * lane)) & ((1 << (8 * size)) - 1)
        try:
            self._bus.write(address & ~(size - 1), size, data)
        except BusFault as exc:
            raise self._bus_fault(address) from exc
        if increment:
            self._advance(size)
