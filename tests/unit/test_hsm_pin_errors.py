"""Token PIN sources in their order, and PKCS#11 exceptions mapped to operator errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pkcs11 import exceptions as p11e

from provisioner.hsm.errors import PinUnavailable, TokenOperationFailed, WrongTokenPin
from provisioner.hsm.pin import PIN_ENV, resolve_pin
from provisioner.hsm.token import translate


def test_pin_file_beats_environment_beats_prompt(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_bytes(b"from-file\r\n")
    pin_file.chmod(0o600)
    env = {PIN_ENV: "from-env"}
    assert resolve_pin(pin_file, environ=env, prompt=lambda: "typed") == b"from-file"
    assert resolve_pin(None, environ=env, prompt=lambda: "typed") == b"from-env"
    assert resolve_pin(None, environ={}, prompt=lambda: "typed") == b"typed"
    with pytest.raises(PinUnavailable, match="give --pin-file"):
        resolve_pin(None, environ={}, prompt=lambda: "")
    with pytest.raises(PinUnavailable, match="give --pin-file"):
        resolve_pin(None, environ={})


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_empty_pin_file_is_refused(tmp_path: Path, content: bytes) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_bytes(content)
    pin_file.chmod(0o400)
    with pytest.raises(PinUnavailable, match="is empty"):
        resolve_pin(pin_file, environ={})


def test_missing_pin_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(PinUnavailable, match=r"cannot read .*nope"):
        resolve_pin(tmp_path / "nope", environ={})


@pytest.mark.parametrize("exc", [p11e.PinIncorrect(), p11e.PinLenRange(), p11e.PinInvalid()])
def test_pin_failures_become_wrong_token_pin(exc: Exception) -> None:
    error = translate("C_Login", "site", exc)
    assert isinstance(error, WrongTokenPin)
    assert error.token_label == "site"


def test_locked_pin_and_other_failures_are_named() -> None:
    locked = translate("C_Login", "site", p11e.PinLocked())
    assert isinstance(locked, TokenOperationFailed)
    assert "locked" in str(locked)
    other = translate("C_Sign", "site", p11e.DeviceRemoved())
    assert str(other) == "PKCS#11 C_Sign failed: DeviceRemoved"
