"""Profile errors (hw_profiles imports nothing from provisioner)."""

from __future__ import annotations


class ProfileValidationError(Exception):
    """A profile cannot be found, read or validated; names the file and the key path."""

    def __init__(self, file: str, key_path: str, reason: str) -> None:
        super().__init__(file, key_path, reason)
        self.file = file
        self.key_path = key_path
        self.reason = reason

    def __str__(self) -> str:
        where = f"{self.file}: {self.key_path}" if self.key_path else self.file
        return f"{where}: {self.reason}"
