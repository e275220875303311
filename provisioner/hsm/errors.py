"""Token errors: one class per failure an operator must tell apart, each a one-line message.

```
ProvisionerError
└─ TokenError
   ├─ ModuleLoadError(module, reason)          the PKCS#11 library cannot be loaded
   ├─ TokenNotFound(module, token_label)
   ├─ WrongTokenPin(token_label)
   ├─ PinUnavailable(reason)                   no prompt, no PIN file, no environment variable
   ├─ TokenKeyMissing(token_label, key_label, kind)
   ├─ TokenKeyUnsafe(token_label, key_label, reason)   extractable or not sensitive
   └─ TokenOperationFailed(operation, reason)
```
No message ever carries a PIN or key bytes.
"""

from __future__ import annotations

from provisioner.errors import ProvisionerError


class TokenError(ProvisionerError):
    """A PKCS#11 module, token, PIN or key object problem."""


class ModuleLoadError(TokenError):
    """The PKCS#11 module cannot be loaded."""

    def __init__(self, module: str, reason: str) -> None:
        self.module = module
        self.reason = reason
        super().__init__(f"PKCS#11 module {module}: {reason}")


class TokenNotFound(TokenError):
    """No token with the label is present in any slot of the module."""

    def __init__(self, module: str, token_label: str) -> None:
        self.module = module
        self.token_label = token_label
        super().__init__(f"no token labelled {token_label!r} in PKCS#11 module {module}")


class WrongTokenPin(TokenError):
    """The user PIN was refused (the token may lock after repeated failures)."""

    def __init__(self, token_label: str) -> None:
        self.token_label = token_label
        super().__init__(f"token {token_label!r} refused the PIN "
                         "(repeated failures may lock the token)")


class PinUnavailable(TokenError):
    """No PIN source answered."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"token PIN: {reason}")


class TokenKeyMissing(TokenError):
    """The token holds no key object of that label and kind."""

    def __init__(self, token_label: str, key_label: str, kind: str) -> None:
        self.token_label = token_label
        self.key_label = key_label
        self.kind = kind
        super().__init__(f"token {token_label!r} has no {kind} labelled {key_label!r}")


class TokenKeyUnsafe(TokenError):
    """A key object on the token could be exported, so it is not adopted."""

    def __init__(self, token_label: str, key_label: str, reason: str) -> None:
        self.token_label = token_label
        self.key_label = key_label
        self.reason = reason
        super().__init__(f"token {token_label!r} key {key_label!r}: {reason}")


class TokenOperationFailed(TokenError):
    """The module refused an operation for another reason (named by its PKCS#11 error)."""

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"PKCS#11 {operation} failed: {reason}")
