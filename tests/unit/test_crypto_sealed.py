"""Sealed files: round trip, 0600, atomic replace, and a specific error for each kind of damage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.crypto import sealed
from provisioner.crypto.sealed import (
    HEADER_SIZE_BYTES,
    StationSecrets,
    load_station_secrets,
    read_sealed,
    save_station_secrets,
    seal_bytes,
    unseal_bytes,
    write_sealed,
)
from provisioner.crypto.secret import Secret
from provisioner.errors import (
    CryptoError,
    SealedFileError,
    Tampered,
    Truncated,
    UnsupportedVersion,
    WrongPassphrase,
)

N = 2**10  # tests trade scrypt cost for speed; the format stores n, so defaults are exercised once
PAYLOAD = b"drbg-state-and-keys"


def _secrets() -> StationSecrets:
    return StationSecrets("st-1", Secret(b"\x01" * 77), Secret(b"\x02" * 32), Secret(b"PEM\n"))


def test_round_trip_with_default_parameters(tmp_path: Path) -> None:
    path = tmp_path / "s.sealed"
    write_sealed(path, PAYLOAD, "correct horse")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes()[6] == 15  # log2(n) stored in the header
    assert read_sealed(path, "correct horse") == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["s.sealed"]  # no temp file left


def test_replacing_keeps_mode_and_content(tmp_path: Path) -> None:
    path = tmp_path / "s.sealed"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_sealed(path, Secret(b"new"), "pw", scrypt_n=N)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_sealed(path, "pw") == b"new"


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "s.sealed"
    write_sealed(path, PAYLOAD, "right", scrypt_n=N)
    with pytest.raises(WrongPassphrase) as info:
        read_sealed(path, "wrong")
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert read_sealed(path, "right") == PAYLOAD


def test_flipped_bit_at_every_byte_is_detected() -> None:
    blob = seal_bytes(b"tiny", "pw", scrypt_n=N)
    for position in range(len(blob)):
        for bit in (1 << shift for shift in range(8)):
            damaged = bytearray(blob)
            damaged[position] ^= bit
            expected: type[SealedFileError] = (
                UnsupportedVersion if position == len(sealed.MAGIC) else Tampered
            )
            with pytest.raises(expected):
                unseal_bytes(bytes(damaged), "pw")
    assert unseal_bytes(blob, "pw") == b"tiny"


@pytest.mark.parametrize("keep", [0, 3, 6, 20, HEADER_SIZE_BYTES, HEADER_SIZE_BYTES + 5, -1])
def test_truncation(tmp_path: Path, keep: int) -> None:
    blob = seal_bytes(PAYLOAD, "pw", scrypt_n=N)
    path = tmp_path / "s.sealed"
    path.write_bytes(blob[:keep])
    with pytest.raises(Truncated) as info:
        read_sealed(path, "pw")
    assert info.value.path == str(path)


def test_trailing_bytes_are_tampering() -> None:
    with pytest.raises(Tampered):
        unseal_bytes(seal_bytes(PAYLOAD, "pw", scrypt_n=N) + b"\x00", "pw")


def test_unknown_version() -> None:
    blob = bytearray(seal_bytes(PAYLOAD, "pw", scrypt_n=N))
    blob[len(sealed.MAGIC)] = 2
    with pytest.raises(UnsupportedVersion):
        unseal_bytes(bytes(blob), "pw", source="bundle.sealed")


def test_crash_before_rename_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.sealed"
    write_sealed(path, b"old secret", "pw", scrypt_n=N)

    def crash(src: object, dst: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power lost"):
        write_sealed(path, b"new secret", "pw", scrypt_n=N)
    monkeypatch.undo()
    assert read_sealed(path, "pw") == b"old secret"
    assert [p.name for p in tmp_path.iterdir()] == ["s.sealed"]


@pytest.mark.parametrize("bad_n", [0, 1, 3, 1000, 2**21])
def test_scrypt_n_must_be_a_sane_power_of_two(bad_n: int) -> None:
    with pytest.raises(CryptoError, match=f"n={bad_n}"):
        seal_bytes(PAYLOAD, "pw", scrypt_n=bad_n)


def test_station_secrets_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "station.sealed"
    save_station_secrets(path, _secrets(), "pw", scrypt_n=N)
    loaded = load_station_secrets(path, "pw")
    assert loaded.station_id == "st-1"
    assert loaded.drbg_state == b"\x01" * 77
    assert loaded.transport_key == b"\x02" * 32
    assert loaded.tls_key_pem == b"PEM\n"
    loaded.wipe()
    assert len(loaded.transport_key) == 0
    with pytest.raises(WrongPassphrase):
        load_station_secrets(path, "nope")


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=20), st.binary(max_size=90), st.binary(max_size=40), st.binary(max_size=60))
def test_station_secrets_bytes_round_trip(
    station_id: str, state: bytes, transport: bytes, pem: bytes
) -> None:
    original = StationSecrets(station_id, Secret(state), Secret(transport), Secret(pem))
    data = original.to_bytes()
    assert isinstance(data, bytearray)
    parsed = StationSecrets.from_bytes(data)
    assert parsed.station_id == station_id
    assert (parsed.drbg_state, parsed.transport_key, parsed.tls_key_pem) == (
        original.drbg_state, original.transport_key, original.tls_key_pem
    )


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: b"XSTS" + d[4:], "magic"),
        (lambda d: d[:4] + b"\x07" + d[5:], "version 7"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:7], "truncated"),
        (lambda d: d + b"\x00", "trailing"),
        (lambda d: d[:5] + b"\x00\x00\x00\x02\xff\xfe" + d[5 + 4 + 4 :], "UTF-8"),
    ],
)
def test_station_secrets_malformed(mutate: object, fragment: str) -> None:
    assert callable(mutate)
    data = bytes(_secrets().to_bytes())
    with pytest.raises(CryptoError, match=fragment):
        StationSecrets.from_bytes(mutate(data))
