"""The one protocol every flash backend speaks, its progress events and the backend registry.

Call order (a backend raises ``ProbeError`` or ``FlashError`` if it is broken):

    open() → read_uid() → [read | erase | program | verify]* → protect(level)? → close()

``open`` may be retried after a failure; ``close`` is always safe to call. ``program`` takes
segments from memory and never writes them to a file. A backend declares what it can do in
``capabilities``; calling an operation it lacks raises ``FlashError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Operation(StrEnum):
    """Long operations that report progress."""

    erase = "erase"
    program = "program"
    verify = "verify"
    read = "read"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """How far a long operation has come, in bytes."""

    operation: Operation
    done_bytes: int
    total_bytes: int


ProgressCallback = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """Ignore progress (the default callback)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do on the chip it is attached to."""

    mass_erase: bool
    page_erase: bool
    readout_protection_levels: tuple[int, ...]
    read_uid: bool
    reset_control: bool
    boot_pin_control: bool


@dataclass(frozen=True, slots=True)
class MemorySegment:
    """A contiguous run of bytes to program at ``start`` (half-open ``[start, start+len)``)."""

    start: int
    data: bytes | bytearray | memoryview = field(repr=False)

    @property
    def end(self) -> int:
        """First address past the segment."""
        return self.start + len(self.data)


@runtime_checkable
class FlashBackend(Protocol):
    """A connection to one chip through one transport."""

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do (valid after ``open``)."""
        ...

    @property
    def location(self) -> str:
        """Where the chip is attached: a port path or probe unique ID, for the operator."""
        ...

    def open(self) -> None:
        """Connect to the chip and bring it to a state where it accepts commands."""
        ...

    def read_uid(self) -> bytes:
        """Return the chip's factory unique ID bytes."""
        ...

    def read(self, address: int, size: int, progress: ProgressCallback = no_progress) -> bytes:
        """Read ``size`` bytes of memory starting at ``address``."""
        ...

    def erase(
        self,
        ranges: Iterable[tuple[int, int]] | None = None,
        progress: ProgressCallback = no_progress,
    ) -> None:
        """Erase the pages/sectors covering each half-open ``(start, end)``; ``None`` erases all."""
        ...

    def program(
        self, segments: Iterable[MemorySegment], progress: ProgressCallback = no_progress
    ) -> None:
        """Write the segments to erased flash."""
        ...

    def verify(
        self, segments: Iterable[MemorySegment], progress: ProgressCallback = no_progress
    ) -> None:
        """Read back each segment; raise ``VerifyMismatch`` naming the first differing address."""
        ...

    def protect(self, level: int) -> None:
        """Apply readout protection ``level`` (0 removes it, which mass-erases the chip)."""
        ...

    def close(self) -> None:
        """Release the port or probe; leave the chip running or reset as the profile says."""
        ...


BackendFactory = Callable[..., FlashBackend]


class BackendRegistry:
    """Backends by transport name, filled by the composition root (never at import time)."""

    def __init__(self) -> None:
        self._factories: dict[str, BackendFactory] = {}

    def register(self, transport: str, factory: BackendFactory) -> None:
        """Make ``factory`` the builder for ``transport``; a second registration is an error."""
        if transport in self._factories:
            raise ValueError(f"transport {transport!r} is already registered")
        self._factories[transport] = factory

    def create(self, transport: str, **kwargs: object) -> FlashBackend:
        """Build a backend for ``transport`` with the given keyword arguments."""
        try:
            factory = self._factories[transport]
        except KeyError:
            known = ", ".join(sorted(self._factories)) or "none"
            raise ValueError(f"unknown transport {transport!r} (known: {known})") from None
        return factory(**kwargs)

    @property
    def transports(self) -> tuple[str, ...]:
        """Registered transport names, sorted."""
        return tuple(sorted(self._factories))


@contextmanager
def opened(backend: FlashBackend) -> Iterator[FlashBackend]:
    """Open ``backend`` and close it on the way out, whatever happens."""
    backend.open()
    try:
        yield backend
    finally:
        backend.close()
