"""The virtual debug probe and its pyOCD plugin class (loaded through ``swd_probe``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from pyocd.core import exceptions
from pyocd.core.plugin import Plugin
from pyocd.probe.debug_probe import DebugProbe

from provisioner.sim.swd_board import (
    BoardLock,
    BoardStateError,
    VirtualSwdBoard,
    list_board_uids,
    load_board,
    save_board,
)
from provisioner.sim.swd_dap import AckFault, AckWait, NoAck
from provisioner.sim.swd_probe import PLUGIN_NAME, boards_directory


def _link_error(exc: Exception) -> exceptions.TransferError:
    if isinstance(exc, AckWait):
        return exceptions.TransferTimeoutError(str(exc))
    if isinstance(exc, AckFault):
        return exceptions.TransferFaultError(str(exc))
    return exceptions.TransferError(str(exc))


class VirtualProbe(DebugProbe):  # type: ignore[misc]
    """A debug probe wired to one virtual board; the board's files are written back on close."""

    def __init__(self, directory: Path, probe_uid: str) -> None:
        super().__init__()
        self._directory = directory
        self._uid = probe_uid
        self._board: VirtualSwdBoard | None = None
        self._protocol: DebugProbe.Protocol | None = None
        self._reset_asserted = False
        self._board_lock: BoardLock | None = None

    @classmethod
    def get_all_connected_probes(cls, unique_id: str | None = None,
                                 is_explicit: bool = False) -> Sequence[VirtualProbe]:
        """Every board in the configured directory (none when the setting is absent)."""
        directory = boards_directory()
        if directory is None:
            return []
        return [cls(directory, uid) for uid in list_board_uids(directory)]

    @classmethod
    def get_probe_with_id(cls, unique_id: str, is_explicit: bool = False) -> VirtualProbe | None:
        """The board whose probe UID is exactly ``unique_id``."""
        directory = boards_directory()
        if directory is None or unique_id not in list_board_uids(directory):
            return None
        return cls(directory, unique_id)

    @property
    def description(self) -> str:
        return f"{self.vendor_name} {self.product_name}"

    @property
    def vendor_name(self) -> str:
        return "provisioner"

    @property
    def product_name(self) -> str:
        return "virtual SWD probe"

    @property
    def supported_wire_protocols(self) -> Collection[DebugProbe.Protocol]:
        return [DebugProbe.Protocol.DEFAULT, DebugProbe.Protocol.SWD]

    @property
    def unique_id(self) -> str:
        return self._uid

    @property
    def wire_protocol(self) -> DebugProbe.Protocol | None:
        return self._protocol

    @property
    def is_open(self) -> bool:
        return self._board is not None

    @property
    def capabilities(self) -> set[DebugProbe.Capability]:
        return set()

    @property
    def board(self) -> VirtualSwdBoard:
        """The powered board (only while open)."""
        if self._board is None:
            raise exceptions.ProbeError(f"virtual probe {self._uid} is not open")
        return self._board

    def open(self) -> None:
        try:
            self._board_lock = BoardLock(self._directory, self._uid)
            self._board = load_board(self._directory, self._uid)
        except BoardStateError as exc:
            self._release()
            raise exceptions.ProbeError(str(exc)) from exc

    def close(self) -> None:
        try:
            if self._board is not None:
                save_board(self._directory, self._uid, self._board)
        finally:
            self._board = None
            self._release()

    def _release(self) -> None:
        if self._board_lock is not None:
            self._board_lock.release()
            self._board_lock = None

    def connect(self, protocol: DebugProbe.Protocol | None = None) -> None:
        if protocol not in (None, DebugProbe.Protocol.DEFAULT, DebugProbe.Protocol.SWD):
            raise exceptions.ProbeError("the virtual probe speaks SWD only")
        self._protocol = DebugProbe.Protocol.SWD

    def disconnect(self) -> None:
        if self._board is not None:
            save_board(self._directory, self._uid, self._board)
        self._protocol = None

    def set_clock(self, frequency: float) -> None:
        """The virtual wire has no clock to set."""

    def reset(self) -> None:
        self.assert_reset(True)
        self.assert_reset(False)

    def assert_reset(self, asserted: bool) -> None:
        if self._reset_asserted and not asserted:
            self.board.core.reset()
        self._reset_asserted = asserted

    def is_reset_asserted(self) -> bool:
        return self._reset_asserted

    def flush(self) -> None:
        """Transfers complete at once; nothing is queued."""

    # --- DP/AP register access ---------------------------------------------------------------

    def read_dp(self, addr: int, now: bool = True) -> int | Callable[[], int]:
        try:
            value = self.board.dap.read_dp(addr)
        except (AckFault, AckWait, NoAck) as exc:
            raise _link_error(exc) from exc
        return value if now else (lambda: value)

    def write_dp(self, addr: int, data: int) -> None:
        try:
            self.board.dap.write_dp(addr, data)
        except (AckFault, AckWait, NoAck) as exc:
            raise _link_error(exc) from exc

    def read_ap(self, addr: int, now: bool = True) -> int | Callable[[], int]:
        try:
            value = self.board.dap.read_ap(addr)
        except (AckFault, AckWait, NoAck) as exc:
            raise _link_error(exc) from exc
        return value if now else (lambda: value)

    def write_ap(self, addr: int, data: int) -> None:
        try:
            self.board.dap.write_ap(addr, data)
        except (AckFault, AckWait, NoAck) as exc:
            raise _link_error(exc) from exc

    def read_ap_multiple(self, addr: int, count: int = 1,
                         now: bool = True) -> Sequence[int] | Callable[[], Sequence[int]]:
        dap = self.board.dap
        try:
            values = [dap.read_ap(addr) for _ in range(count)]
        except (AckFault, AckWait, NoAck) as exc:
            raise _link_error(exc) from exc
        return values if now else (lambda: values)

    def write_ap_multiple(self, addr: int, values: Sequence[int]) -> None:
        dap = self.board.dap
        try:
            for value in values:
                dap.write_ap(addr, value)
        except (AckFault, AckWait, NoAck) as exc:
            raise _link_error(exc) from exc


class VirtualProbePlugin(Plugin):  # type: ignore[misc]
    """Entry point ``provisioner_virtual`` in group ``pyocd.probe``."""

    def should_load(self) -> bool:
        """Load only where PROVISIONER_VIRTUAL_PROBES names a directory (never on a station)."""
        return boards_directory() is not None

    def load(self) -> type[VirtualProbe]:
        """Register the custom targets the virtual boards need and return the probe class."""
        from provisioner.flash.pyocd_targets import register_targets

        register_targets()
        return VirtualProbe

    @property
    def name(self) -> str:
        return PLUGIN_NAME

    @property
    def description(self) -> str:
        return "Virtual SWD boards emulated with unicorn (provisioner test and demo)"

