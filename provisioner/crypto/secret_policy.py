"""Strength rules for the secrets people choose: operator PINs and station passphrases.

One rule set for both (only the minimum length differs): long enough, not one repeated
character or a repeated group (``1111``, ``1212``, ``abcabc``), not a run such as ``123456``
or ``fedcba``, not a well-known PIN. Pure: callers turn a weakness into their own error.
"""

from __future__ import annotations

import itertools

MIN_PIN_CHARS = 6
MIN_PASSPHRASE_CHARS = 8
MAX_SECRET_CHARS = 64
_WELL_KNOWN = frozenset({
    "password", "passwort", "passphrase", "qwertyui", "qwertz", "qwerty", "letmein", "changeme",
    "123123", "112233", "654321", "696969", "123321", "159753", "147258", "121212", "000000",
})


def weakness(secret: str, *, min_chars: int) -> str | None:
    """Return why ``secret`` is too weak, or None when it passes the rules above."""
    if len(secret) < min_chars:
        return f"needs at least {min_chars} characters"
    if len(secret) > MAX_SECRET_CHARS:
        return f"is longer than {MAX_SECRET_CHARS} characters"
    if any(not char.isprintable() for char in secret):
        return "holds a control character"
    folded = secret.lower()
    if folded in _WELL_KNOWN:
        return "is a well-known choice"
    if _is_repetition(folded):
        return "is one character or group repeated"
    if _is_run(folded):
        return "is a run of consecutive characters"
    return None


def _is_repetition(text: str) -> bool:
    size = len(text)
    return any(size % unit == 0 and text[:unit] * (size // unit) == text
               for unit in range(1, size // 2 + 1))


def _is_run(text: str) -> bool:
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    return steps in ({1}, {-1})
