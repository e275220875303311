"""No secret appears in any repr, exception message or log record of the crypto package."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from provisioner.crypto import envelope
from provisioner.crypto.drbg import HmacDrbg
from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.pins import hash_pin, verify_pin
from provisioner.crypto.sealed import (
    StationSecrets,
    load_station_secrets,
    read_sealed,
    save_station_secrets,
    seal_bytes,
    unseal_bytes,
    write_sealed,
)
from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import SigningKey
from provisioner.errors import ProvisionerError

SEED = bytes(range(0xA0, 0xC0))
MASTER = bytes(range(0x40, 0x60))
PASSPHRASE = "hunter2-passphrase"
PIN = "918273"


def _forms(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.b64encode(secret).decode().rstrip("="),
        secret.decode("latin-1"),
        repr(secret)[2:-1],
    ]


def _texts_of(exc: BaseException) -> list[str]:
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current), *map(str, current.args)]
        current = current.__cause__ or current.__context__
    return texts


def test_no_secret_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[bytes] = [SEED, MASTER]
    shown: list[str] = []

    def expect_error(call: object) -> None:
        assert callable(call)
        with pytest.raises(ProvisionerError) as info:
            call()
        shown.extend(_texts_of(info.value))

    stream = KeyStream.from_seed(Secret(SEED), "st-1")
    index, key = stream.next_key(32)
    stream.advance_to(10)
    state = stream.export_state()
    secrets += [bytes(key.reveal()), bytes(state.reveal())]
    shown += [repr(stream), repr(key), str(key), repr(state), repr(stream.clone())]
    expect_error(lambda: stream.advance_to(index))
    expect_error(lambda: KeyStream.from_state(bytes(state.reveal())[:-1]))
    drbg = HmacDrbg.instantiate(SEED, b"n", b"p")
    shown.append(repr(drbg))
    secrets.append(bytes(drbg.generate(32)))

    transport = envelope.derive_key(Secret(MASTER), envelope.FW_ENC_INFO)
    secrets.append(bytes(transport.reveal()))
    blob = envelope.encrypt(transport, b"template-bytes-\x00\x01", b"grant")
    secrets.append(b"template-bytes-\x00\x01")
    expect_error(lambda: envelope.decrypt(transport, blob, b"other"))
    expect_error(lambda: envelope.decrypt(transport, blob[:10], b"grant"))
    expect_error(lambda: envelope.unwrap(Secret(MASTER), envelope.wrap(MASTER, SEED, b"a"), b"b"))
    expect_error(lambda: envelope.encrypt(SEED[:16], b"x", b""))

    signer = SigningKey.generate()
    pem = signer.to_pem()
    secrets.append(bytes(pem.reveal()))
    shown += [repr(signer), repr(signer.verify_key), repr(pem)]
    expect_error(lambda: signer.verify_key.verify(b"x", bytes(64)))
    expect_error(lambda: SigningKey.from_pem(bytes(pem.reveal())[:-30]))

    stored = hash_pin(PIN, n=2**10)
    assert verify_pin(PIN, stored)
    expect_error(lambda: verify_pin(PIN, stored.replace("scrypt", "xx")))

    station = StationSecrets("st-1", state, transport, pem)
    shown.append(repr(station))
    path = tmp_path / "station.sealed"
    save_station_secrets(path, station, PASSPHRASE, scrypt_n=2**10)
    loaded = load_station_secrets(path, PASSPHRASE)
    shown.append(repr(loaded))
    expect_error(lambda: load_station_secrets(path, PASSPHRASE + "x"))
    write_sealed(tmp_path / "p", SEED, PASSPHRASE, scrypt_n=2**10)
    shown.append(repr(read_sealed(tmp_path / "p", PASSPHRASE)))
    sealed_blob = seal_bytes(SEED, PASSPHRASE, scrypt_n=2**10)
    expect_error(lambda: unseal_bytes(sealed_blob[:-1], PASSPHRASE))
    expect_error(lambda: unseal_bytes(sealed_blob[:-1] + bytes([sealed_blob[-1] ^ 1]), PASSPHRASE))
    expect_error(lambda: StationSecrets.from_bytes(bytes(station.to_bytes())[:-2]))

    shown += [record.getMessage() for record in caplog.records]
    shown += [repr(record.args) for record in caplog.records]
    assert any("sealed" in record.getMessage() for record in caplog.records)
    forms = [form for secret in secrets for form in _forms(secret)] + [PASSPHRASE, PIN]
    for text in shown:
        for form in forms:
            assert form not in text, f"secret visible in {text[:60]!r}"
