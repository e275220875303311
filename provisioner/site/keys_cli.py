"""`provisioner site keys …` and the PKCS#11 options shared by `site init` and `keys migrate`."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from provisioner.crypto.secret import Secret
from provisioner.errors import ProvisionerError
from provisioner.hsm.pin import resolve_pin
from provisioner.site.context import utc_now
from provisioner.site.keyprovider.config import TokenConfig, read_token_config
from provisioner.site.keyprovider.migrate import migrate_to_token

F = TypeVar("F", bound=Callable[..., object])
P = ParamSpec("P")
R = TypeVar("R")


def _one_line(func: Callable[P, R]) -> Callable[P, R]:
    """Render provisioner errors as one-line CLI errors (exit status 1)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ProvisionerError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def prompt_pin() -> str | None:
    """Ask for the token PIN on the terminal (None when there is no terminal to ask on)."""
    if not sys.stdin.isatty():
        return None
    value: str = click.prompt("Token user PIN", hide_input=True, err=True)
    return value


def _prompt() -> str:
    return prompt_pin() or ""


def token_options(func: F) -> F:
    """Add --pkcs11-module, --token-label and --pin-file (the PIN is never an argument)."""
    for option in reversed((
        click.option("--pkcs11-module", "pkcs11_module", default=None,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="PKCS#11 module (.so) holding the site keys, e.g. SoftHSM2's."),
        click.option("--token-label", default=None, help="Label of the token to use."),
        click.option("--pin-file", default=None,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="File (0600) holding the token user PIN; else "
                          "$PROVISIONER_PKCS11_PIN, else a prompt."),
    )):
        func = option(func)
    return func


def token_config(pkcs11_module: Path | None, token_label: str | None,
                 pin_file: Path | None) -> tuple[TokenConfig, Secret] | None:
    """Turn the token options into a configuration and the PIN, or None without a module."""
    if pkcs11_module is None:
        if token_label or pin_file:
            raise click.UsageError("--token-label and --pin-file need --pkcs11-module")
        return None
    if not token_label:
        raise click.UsageError("--pkcs11-module needs --token-label")
    config = TokenConfig(module=str(pkcs11_module.absolute()), token_label=token_label,
                         pin_file=str(pin_file.absolute()) if pin_file else None)
    return config, resolve_pin(pin_file, prompt=_prompt)


def site_pin_prompt() -> Callable[[], str]:
    """The prompt a CLI command hands to ``open_site``."""
    return _prompt


@click.group("keys")
def keys_group() -> None:
    """Where the site keys live; move them onto a PKCS#11 token."""


@keys_group.command("show")
@_one_line
def keys_show() -> None:
    """Say which provider holds the master, signing and CA keys (no secret shown)."""
    root = _root()
    config = read_token_config(root)
    if config is None:
        click.echo(f"key files in {root} (master.key, signing_key.pem, ca_key.pem)")
        return
    click.echo(f"PKCS#11 module {config.module}, token {config.token_label!r}")
    click.echo(f"master key  {config.master_label}\nsigning key {config.signing_label}\n"
               f"CA key      {config.ca_label}")


@keys_group.command("migrate")
@click.option("--to-pkcs11", "to_pkcs11", is_flag=True, required=True,
              help="Move the key files onto a PKCS#11 token.")
@token_options
@_one_line
def keys_migrate(to_pkcs11: bool, pkcs11_module: Path | None, token_label: str | None,
                 pin_file: Path | None) -> None:
    """Import signing and CA keys, re-wrap every secret under a new token master key,
    verify the round trip, then shred the key files (all audited)."""
    chosen = token_config(pkcs11_module, token_label, pin_file)
    if chosen is None:
        raise click.UsageError("--to-pkcs11 needs --pkcs11-module and --token-label")
    config, pin = chosen
    click.echo("importing keys, re-wrapping secrets on the token…", err=True)
    with pin:
        result = migrate_to_token(_root(), config, pin, now=utc_now)
    click.echo(f"re-wrapped {result.rewrapped} secrets, {result.verified} verified on the token")
    click.echo(f"signing key id   {result.signing_key_id} (unchanged)")
    for path in result.shredded:
        click.echo(f"shredded {path}")


def _root() -> Path:
    value = click.get_current_context().find_root().meta.get("site_dir")
    return Path(value) if value else Path("site-data")
