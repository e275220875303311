"""Fault switches of the virtual AN3155 board; each fires once, so the next run recovers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class BoardFaults:
    """What the virtual serial board does wrong, once each.

    * ``nack_command``: answer NACK to this command code instead of ACK.
    * ``nack_write_at``: NACK the data of a Write Memory block starting at this address.
    * ``garble_command``: answer this command with a byte that is neither ACK nor NACK.
    * ``drop_command``: swallow the ACK of this command (the host times out).
    * ``stall_command``: stop answering for ``stall_s`` after this command.
    * ``power_loss_at``: a Write Memory block at this address writes only its first
      ``power_loss_after_bytes`` bytes, then the chip loses power and needs a new sync.
    """

    nack_command: int | None = None
    nack_write_at: int | None = None
    garble_command: int | None = None
    drop_command: int | None = None
    stall_command: int | None = None
    stall_s: float = 2.0
    power_loss_at: int | None = None
    power_loss_after_bytes: int = 64

    def take(self, name: str, value: int) -> bool:
        """Return True (and disarm it) when fault ``name`` is armed for ``value``."""
        if getattr(self, name) == value:
            setattr(self, name, None)
            return True
        return False
