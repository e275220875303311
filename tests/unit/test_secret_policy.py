"""PIN and passphrase strength rules (issue 11 §6): the weak choices an attacker tries first."""

from __future__ import annotations

import pytest

from provisioner.crypto.secret_policy import MIN_PASSPHRASE_CHARS, MIN_PIN_CHARS, weakness


@pytest.mark.parametrize(("pin", "reason"), [
    ("1", "at least 6"), ("0000", "at least 6"), ("1111", "at least 6"),
    ("111111", "repeated"), ("121212", "well-known"), ("12341234", "repeated"),
    ("123456", "run"), ("987654", "run"), ("abcdef", "run"), ("000000", "well-known"),
    ("4711\x002342", "control"), ("9" * 65, "longer than 64"),
])
def test_weak_pins_are_refused_with_a_reason(pin: str, reason: str) -> None:
    found = weakness(pin, min_chars=MIN_PIN_CHARS)
    assert found is not None
    assert reason in found


@pytest.mark.parametrize("pin", ["482913", "4711-2342", "1234-5678", "246810", "907142"])
def test_ordinary_pins_pass(pin: str) -> None:
    assert weakness(pin, min_chars=MIN_PIN_CHARS) is None


@pytest.mark.parametrize("passphrase", ["password", "PassWord", "abcdefgh", "zzzzzzzz", "abab" * 3])
def test_weak_passphrases_are_refused(passphrase: str) -> None:
    assert weakness(passphrase, min_chars=MIN_PASSPHRASE_CHARS) is not None


def test_a_random_passphrase_passes() -> None:
    assert weakness("tidy-otter-41-lamp", min_chars=MIN_PASSPHRASE_CHARS) is None
