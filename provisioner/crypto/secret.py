"""Secret bytes holder: owned buffer, constant-time comparison, explicit wiping, hidden repr."""

from __future__ import annotations

import hmac
from types import TracebackType

_Bytes = bytes | bytearray | memoryview


def constant_time_equal(a: _Bytes, b: _Bytes) -> bool:
    """Compare two byte strings in time independent of where they differ."""
    return hmac.compare_digest(a, b)


class Secret:
    """Own a copy of secret bytes; never show them in ``repr``/``str``; wipe on demand or exit."""

    __slots__ = ("_buf",)
    __hash__ = None  # type: ignore[assignment]  # mutable and secret: never a dict key

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._buf = bytearray(data)

    def reveal(self) -> bytearray:
        """Return the live buffer; use it at once and do not keep a reference."""
        return self._buf

    def wipe(self) -> None:
        """Overwrite the buffer with zeros and empty it."""
        buf = self._buf
        buf[:] = bytes(len(buf))
        buf.clear()

    def __len__(self) -> int:
        return len(self._buf)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._buf, other._buf)
        if isinstance(other, bytes | bytearray):
            return hmac.compare_digest(self._buf, other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Secret(<{len(self._buf)} bytes>)"

    __str__ = __repr__

    def __enter__(self) -> Secret:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.wipe()

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Secret cannot be pickled")

