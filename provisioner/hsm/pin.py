"""Where a token PIN comes from: a 0600 file, the environment, or an interactive prompt."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from provisioner.crypto.secret import Secret
from provisioner.hsm.errors import PinUnavailable

PIN_ENV = "PROVISIONER_PKCS11_PIN"
PinPrompt = Callable[[], str]


def read_pin_file(path: Path) -> Secret:
    """Read a PIN from a file readable by its owner only (trailing newline dropped).

    Raises:
        PinUnavailable: missing, group/world readable or empty.
    """
    try:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise PinUnavailable(f"{path} has mode {mode:04o}, must be 0600 or 0400")
        data = bytearray(path.read_bytes())
    except OSError as exc:
        raise PinUnavailable(f"cannot read {path}: {exc.strerror}") from exc
    try:
        while data and data[-1] in b"\r\n":
            data.pop()
        if not data:
            raise PinUnavailable(f"{path} is empty")
        return Secret(data)
    finally:
        data[:] = bytes(len(data))


def resolve_pin(
    pin_file: Path | None, *, prompt: PinPrompt | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Secret:
    """Return the PIN from ``pin_file``, else ``$PROVISIONER_PKCS11_PIN``, else ``prompt``.

    Never from a command-line argument: those show in process listings and shell history.

    Raises:
        PinUnavailable: no source gave a PIN.
    """
    if pin_file is not None:
        return read_pin_file(pin_file)
    value = environ.get(PIN_ENV)
    if value:
        return Secret(value.encode())
    if prompt is not None:
        entered = prompt()
        if entered:
            return Secret(entered.encode())
    raise PinUnavailable(f"give --pin-file, set {PIN_ENV} or run interactively to be prompted")
