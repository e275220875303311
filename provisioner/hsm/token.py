"""Open a PKCS#11 token once per process and run every call on it under one lock.

A PKCS#11 module is initialised once per process (``C_Initialize``), so modules are shared
and reference-counted here. python-pkcs11 initialises with no arguments, which tells the module
that the application will not call it from several threads at once (PKCS#11 v2.40 §5.4:
SoftHSM2 then turns its own mutexes off), so every call into a module is serialised by that
module's lock; one logged-in session per ``Token`` is enough under it. The login is
application-wide (§5.6): a second ``Token`` on the same token inherits it, after its PIN is
checked against the first one's.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import pkcs11
from pkcs11 import exceptions as p11e

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Pkcs11Lib  # noqa: N812

from provisioner.crypto.secret import Secret
from provisioner.hsm.errors import (
    ModuleLoadError,
    TokenError,
    TokenNotFound,
    TokenOperationFailed,
    WrongTokenPin,
)

T = TypeVar("T")


@dataclass
class _Module:
    lib: Pkcs11Lib
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: int = 0
    pin_checks: dict[str, bytes] = field(default_factory=dict)
    pin_salt: bytes = field(default_factory=lambda: os.urandom(32))


_modules: dict[str, _Module] = {}
_modules_lock = threading.Lock()


def translate(operation: str, token_label: str, exc: Exception) -> TokenError:
    """Map a python-pkcs11 exception to the token error an operator can act on."""
    if isinstance(exc, p11e.PinIncorrect | p11e.PinLenRange | p11e.PinInvalid):
        return WrongTokenPin(token_label)
    if isinstance(exc, p11e.PinLocked):
        return TokenOperationFailed(operation, f"token {token_label!r} is locked (PIN blocked)")
    return TokenOperationFailed(operation, type(exc).__name__)


def _acquire(module: str) -> _Module:
    with _modules_lock:
        found = _modules.get(module)
        if found is None:
            try:
                found = _Module(pkcs11.lib(module))
            except p11e.PKCS11Error as exc:
                reason = str(exc).split(": ")[-1] or type(exc).__name__
                raise ModuleLoadError(module, reason) from exc
            _modules[module] = found
        found.users += 1
        return found


def _release(module: str) -> None:
    with _modules_lock:
        found = _modules.get(module)
        if found is None:
            return
        found.users -= 1
        if found.users <= 0:
            del _modules[module]
            pkcs11.unload(module)


class Token:
    """A logged-in token: ``run(operation, fn)`` calls ``fn(session)`` under the module lock.

    Call ``close`` once; it closes the session (ending the login when it is the last) and
    releases the module.
    """

    def __init__(self, module: str, token_label: str, pin: Secret) -> None:
        self.module = module
        self.token_label = token_label
        self._entry = _acquire(module)
        self._handles: dict[tuple[str, str], pkcs11.Key] = {}
        self._session: pkcs11.Session | None = None
        try:
            with self._entry.lock:
                try:
                    self._token = self._entry.lib.get_token(token_label=token_label)
                except p11e.NoSuchToken as exc:
                    raise TokenNotFound(module, token_label) from exc
                except p11e.PKCS11Error as exc:
                    raise translate("C_GetTokenInfo", token_label, exc) from exc
                self._session = self._login(pin)
        except TokenError:
            _release(module)
            raise

    def _login(self, pin: Secret) -> pkcs11.Session:
        check = hmac.new(self._entry.pin_salt, bytes(pin.reveal()), hashlib.sha256).digest()
        known = self._entry.pin_checks.get(self.token_label)
        try:
            # python-pkcs11 takes the PIN as str (PKCS#11 PINs are UTF-8, v2.40 §5.6).
            session = self._token.open(user_pin=bytes(pin.reveal()).decode(), rw=True)
        except UnicodeDecodeError:
            raise WrongTokenPin(self.token_label) from None
        except p11e.UserAlreadyLoggedIn:
            # Another holder in this process logged in: the PIN must be the one it used.
            if known is None or not hmac.compare_digest(known, check):
                raise WrongTokenPin(self.token_label) from None
            session = self._token.open(rw=True)
        except p11e.PKCS11Error as exc:
            raise translate("C_Login", self.token_label, exc) from exc
        self._entry.pin_checks[self.token_label] = check
        return session

    def key(self, session: pkcs11.Session, name: tuple[str, str],
            find: Callable[[pkcs11.Session], pkcs11.Key]) -> pkcs11.Key:
        """Return the key object ``find`` locates, cached for the session (C_FindObjects costs
        several times the operation itself on SoftHSM2; a handle stays valid while the
        session lives, PKCS#11 v2.40 §2.4). Call from inside ``run``."""
        found = self._handles.get(name)
        if found is None:
            found = self._handles[name] = find(session)
        return found

    def run(self, operation: str, fn: Callable[[pkcs11.Session], T]) -> T:
        """Call ``fn`` with the session under the module lock; a PKCS#11 failure becomes a
        ``TokenError`` naming ``operation``."""
        with self._entry.lock:
            if self._session is None:
                raise TokenOperationFailed(operation, "token closed")
            try:
                return fn(self._session)
            except p11e.NoSuchKey:
                raise
            except p11e.PKCS11Error as exc:
                raise translate(operation, self.token_label, exc) from exc

    def close(self) -> None:
        """Close the session (the login ends with the last one) and release the module."""
        with self._entry.lock:
            session, self._session = self._session, None
            self._handles.clear()
            if session is None:
                return
            with contextlib.suppress(p11e.PKCS11Error):  # already closed by the module
                session.close()
        _release(self.module)

    def __repr__(self) -> str:
        return f"Token(module={self.module!r}, token_label={self.token_label!r})"
