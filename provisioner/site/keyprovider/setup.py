"""Create a site's keys (files or token), and open whichever provider ``keys.json`` names."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import SigningKey
from provisioner.hsm import objects
from provisioner.hsm.objects import KeyKind
from provisioner.hsm.pin import PIN_ENV, PinPrompt, resolve_pin
from provisioner.hsm.token import Token
from provisioner.site import keys
from provisioner.site.keyprovider.base import SiteKeys
from provisioner.site.keyprovider.certsign import sign_externally
from provisioner.site.keyprovider.config import TokenConfig, read_token_config, write_token_config
from provisioner.site.keyprovider.files import FileKeys
from provisioner.site.keyprovider.token_keys import TokenKeys
from provisioner.site.sitedir import SiteDir, SiteDirError

MIGRATION_MARKER = "keys-migrating.json"


def open_site_keys(
    root: Path, *, pin: Secret | None = None, pin_prompt: PinPrompt | None = None,
) -> SiteKeys:
    """Open the site's key provider: key files, or the token named in ``keys.json``.

    The PIN comes from ``pin``, else the configured PIN file, ``$PROVISIONER_PKCS11_PIN``
    or ``pin_prompt``.

    Raises:
        SiteKeyError, TokenError, SiteDirError
    """
    if (root / MIGRATION_MARKER).exists():
        raise SiteDirError(root, "a key migration was interrupted: run "
                                 "`provisioner site keys migrate --to-pkcs11 …` again")
    config = read_token_config(root)
    if config is None:
        return FileKeys(root)
    if pin is not None:
        return TokenKeys.open(root, config, pin)
    with resolve_pin(config.pin_path, prompt=pin_prompt) as resolved:
        return TokenKeys.open(root, config, resolved)


def check_site_keys(root: Path, pin_prompt: PinPrompt | None) -> None:
    """Open and close the provider once, so a serving site fails early and in words; a PIN
    typed at the prompt is left in ``$PROVISIONER_PKCS11_PIN`` for the worker processes."""
    config = read_token_config(root)
    if config is None:
        open_site_keys(root).close()
        return
    with resolve_pin(config.pin_path, prompt=pin_prompt) as pin:
        open_site_keys(root, pin=pin).close()
        if config.pin_path is None:
            os.environ[PIN_ENV] = bytes(pin.reveal()).decode()


def create_file_keys(paths: SiteDir, site_name: str, now: datetime) -> None:
    """Write the master key, the Ed25519 key, the CA key (0600) and the CA certificate."""
    keys.create_master_key(paths.master_key)
    signer = SigningKey.generate()
    with signer.to_pem() as pem:
        keys.write_private_file(paths.signing_key, pem.reveal())
    ca = keys.create_ca(site_name, now)
    paths.ca_cert.write_bytes(ca.cert_pem)
    keys.write_private_file(paths.ca_key, ca.key_pem.reveal())
    ca.key_pem.wipe()


def _generate_or_adopt(token: Token, label: str, kind: KeyKind) -> None:
    if objects.has_key(token, label, kind):
        objects.check_protected(token, label, kind)
    else:
        objects.generate(token, label, kind)


def create_token_keys(
    paths: SiteDir, config: TokenConfig, pin: Secret, site_name: str, now: datetime,
) -> None:
    """Generate the three keys on the token (adopting any already there under their labels),
    write the self-signed CA certificate (signed on the token) and ``keys.json``.

    Raises:
        TokenError: module, token, PIN, or an adopted key that could leave the token.
    """
    token = Token(config.module, config.token_label, pin)
    try:
        _generate_or_adopt(token, config.master_label, KeyKind.aes)
        _generate_or_adopt(token, config.signing_label, KeyKind.ed25519)
        _generate_or_adopt(token, config.ca_label, KeyKind.p256)
        ca_public = objects.p256_public_key(
            objects.public_point(token, config.ca_label, KeyKind.p256))
        cert = sign_externally(
            keys.ca_builder(site_name, now, ca_public), ca_public,
            lambda tbs: objects.sign_p256_sha256(token, config.ca_label, tbs))
    finally:
        token.close()
    paths.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_token_config(paths.root, config)
