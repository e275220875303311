"""Release versions as the protocol's u32 (major<<16 | minor<<8 | patch) and back."""

from __future__ import annotations

import re

from provisioner.errors import InvalidRequest

_VERSION = re.compile(r"^(\d{1,5})\.(\d{1,3})\.(\d{1,3})$")


def parse_version(text: str) -> int:
    """Return ``"1.2.3"`` as ``0x00010203``.

    Raises:
        InvalidRequest: not MAJOR.MINOR.PATCH with major ≤ 65535 and minor, patch ≤ 255.
    """
    match = _VERSION.match(text.strip())
    if match is None:
        raise InvalidRequest(f"version {text!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in match.groups())
    if major > 0xFFFF or minor > 0xFF or patch > 0xFF:
        raise InvalidRequest(f"version {text!r} out of range (major ≤ 65535, minor/patch ≤ 255)")
    return major << 16 | minor << 8 | patch


def format_version(value: int) -> str:
    """Return ``0x00010203`` as ``"1.2.3"``."""
    return f"{value >> 16}.{(value >> 8) & 0xFF}.{value & 0xFF}"
