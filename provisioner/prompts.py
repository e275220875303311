"""Read a passphrase or PIN the way every command does: a file, else a variable, else a prompt."""

from __future__ import annotations

import os
from pathlib import Path

import click


def read_secret(env_var: str, path: Path | None, prompt: str, *, confirm: bool = False) -> str:
    """Return a passphrase/PIN from ``path``, else ``$env_var``, else a hidden prompt.

    A file's trailing newline is dropped; nothing is echoed, so nothing reaches the shell
    history.
    """
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise click.ClickException(f"cannot read {path}: {reason}") from exc
    value = os.environ.get(env_var)
    if value:
        return value
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
