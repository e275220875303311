"""The station key store: write-ahead persistence past an index, forward only, sealed at close."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.secret import Secret
from provisioner.errors import IndexBehind, StationConfigError
from provisioner.station.keystore import KeyStore

SEED = Secret(bytes(range(32)))
STATION = "station-k"
TRANSPORT_KEY = Secret(b"\x42" * 32)


def _initial_state() -> Secret:
    return KeyStream.from_seed(SEED, STATION).export_state()


def _site_key(index: int, size: int = 16) -> bytes:
    return bytes(KeyStream.from_seed(SEED, STATION).key_at(index, size).reveal())


def _unlock(path: Path, **kwargs: object) -> KeyStore:
    return KeyStore.unlock(path, STATION, TRANSPORT_KEY, _initial_state(), **kwargs)  # type: ignore[arg-type]


def test_keys_match_the_site_and_the_state_on_disk_is_already_past(tmp_path: Path) -> None:
    path = tmp_path / "keystream.state"
    store = _unlock(path)
    assert path.stat().st_mode & 0o777 == 0o600
    key = store.key_at(3, 16)
    assert bytes(key.reveal()) == _site_key(3)
    # a crash right now: a new process resumes past index 3, never before it
    resumed = _unlock(path)
    assert resumed.next_index == 4
    with pytest.raises(IndexBehind):
        resumed.key_at(3, 16)
    assert bytes(resumed.key_at(4, 32).reveal()) == _site_key(4, 32)


def test_skip_to_and_floor_index_only_move_forward(tmp_path: Path) -> None:
    path = tmp_path / "keystream.state"
    store = _unlock(path, floor_index=5)
    assert store.next_index == 5
    store.skip_to(2)
    assert store.next_index == 5
    store.skip_to(9)
    assert _unlock(path).next_index == 9
    assert bytes(store.key_at(9, 16).reveal()) == _site_key(9)


def test_state_file_is_encrypted_and_authenticated(tmp_path: Path) -> None:
    path = tmp_path / "keystream.state"
    _unlock(path).key_at(0, 16)
    stream = KeyStream.from_state(_initial_state())
    stream.advance_to(1)
    with stream.export_state() as state:  # the working state now on disk, in clear here
        assert bytes(state.reveal()[-16:]) not in path.read_bytes()
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(StationConfigError, match="does not decrypt"):
        _unlock(path)
    KeyStore.unlock(tmp_path / "other", STATION, Secret(b"\x43" * 32), _initial_state())
    with pytest.raises(StationConfigError):  # written under another station's transport key
        KeyStore.unlock(tmp_path / "other", STATION, TRANSPORT_KEY, _initial_state())


def test_enrolment_state_file_is_the_only_copy(tmp_path: Path) -> None:
    path = tmp_path / "keystream.state"
    KeyStore.create(path, STATION, TRANSPORT_KEY, _initial_state()).key_at(0, 16)
    # unlock with the empty sealed field enrolment writes: the file is authoritative
    resumed = KeyStore.unlock(path, STATION, TRANSPORT_KEY, Secret(b""))
    assert resumed.next_index == 1
    with pytest.raises(StationConfigError, match="missing"):
        KeyStore.unlock(tmp_path / "gone", STATION, TRANSPORT_KEY, Secret(b""))
