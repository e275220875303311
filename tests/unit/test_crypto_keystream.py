"""KeyStream: documented construction, site/station agreement, forward only, stolen station."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner.crypto.drbg import HmacDrbg
from provisioner.crypto.keystream import KeyStream, generate_seed
from provisioner.crypto.sealed import StationSecrets, load_station_secrets, save_station_secrets
from provisioner.crypto.secret import Secret
from provisioner.errors import DrbgError, IndexBehind, ReseedRequired

SEED = Secret(bytes(range(100, 132)))
STATION = "station-07"


def test_construction_matches_module_docstring() -> None:
    # Recompute index 0 and 1 from the documented inputs, independently of keystream.py.
    encoded = STATION.encode()
    nonce = hashlib.sha256(b"provisioner/keystream/nonce/v1\x00" + encoded).digest()[:16]
    drbg = HmacDrbg.instantiate(SEED.reveal(), nonce, b"provisioner/keystream/v1\x00" + encoded)
    first, second = drbg.generate(32), drbg.generate(32)
    stream = KeyStream.from_seed(SEED, STATION)
    assert stream.next_key(32) == (0, Secret(first))
    index, key = stream.next_key(16)
    assert (index, key) == (1, Secret(second[:16]))
    assert stream.next_index == 2


def test_site_and_station_agree_over_10000_keys() -> None:
    station_keys: list[bytes] = []
    state = KeyStream.from_seed(SEED, STATION).export_state()
    while len(station_keys) < 10_000:  # the station persists and restores every 7 keys
        stream = KeyStream.from_state(state)
        for _ in range(min(7, 10_000 - len(station_keys))):
            got_index, key = stream.next_key(32)
            assert got_index == len(station_keys)
            station_keys.append(bytes(key.reveal()))
        state = stream.export_state()
    rng = random.Random(4)
    site = KeyStream.from_seed(SEED, STATION)  # the site's cached stream: key n after n-1
    for index in range(10_000):
        assert site.key_at(index, 32) == station_keys[index]
    for index in rng.sample(range(10_000), 30):  # a cold site fast-forwarding from the seed
        assert KeyStream.from_seed(SEED, STATION).key_at(index, 16) == station_keys[index][:16]
    assert len(set(station_keys)) == 10_000


def test_station_ids_give_distinct_streams() -> None:
    a = KeyStream.from_seed(SEED, "a").next_key(32)[1]
    b = KeyStream.from_seed(SEED, "b").next_key(32)[1]
    assert a != b


def test_never_goes_backwards() -> None:
    stream = KeyStream.from_seed(SEED, STATION)
    stream.advance_to(5)
    with pytest.raises(IndexBehind) as info:
        stream.advance_to(4)
    assert (info.value.requested, info.value.next_index) == (4, 5)
    assert "4" in str(info.value)
    assert "5" in str(info.value)
    with pytest.raises(IndexBehind):
        stream.key_at(0, 32)
    stream.advance_to(5)  # staying put is allowed
    assert stream.next_index == 5


def test_stolen_station_reveals_no_earlier_key(tmp_path: Path) -> None:
    station = KeyStream.from_seed(SEED, STATION)
    issued = [bytes(station.next_key(32)[1].reveal()) for _ in range(50)]
    path = tmp_path / "station.sealed"
    keep = StationSecrets(STATION, station.export_state(), Secret(bytes(32)), Secret(b"pem"))
    save_station_secrets(path, keep, "pass", scrypt_n=2**10)
    assert SEED.reveal() not in path.read_bytes()
    stolen = load_station_secrets(path, "pass")  # the thief even knows the passphrase
    payload = bytes(stolen.to_bytes())
    assert SEED.reveal() not in payload
    assert all(key not in payload for key in issued)
    thief = KeyStream.from_state(stolen.drbg_state)
    assert thief.next_index == 50
    for index in range(50):
        with pytest.raises(IndexBehind):
            thief.clone().key_at(index, 32)
    future = {bytes(thief.next_key(32)[1].reveal()) for _ in range(200)}
    assert future.isdisjoint(issued)


def test_clone_is_independent() -> None:
    stream = KeyStream.from_seed(SEED, STATION)
    twin = stream.clone()
    assert stream.next_key(32) == twin.next_key(32)
    stream.next_key(32)
    assert stream.next_index == 2
    assert twin.next_index == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=6))
def test_any_export_points_give_the_same_sequence(steps: list[int]) -> None:
    reference = KeyStream.from_seed(SEED, STATION)
    stream = KeyStream.from_seed(SEED, STATION)
    for step in steps:
        stream = KeyStream.from_state(stream.export_state())
        target = stream.next_index + step
        stream.advance_to(target)
        assert stream.next_key(16) == (target, reference.key_at(target, 16))


@pytest.mark.parametrize(
    ("blob", "fragment"),
    [
        (b"", "bytes"),
        (b"XKST" + bytes(KeyStream.from_seed(SEED, STATION).export_state().reveal())[4:], "magic"),
        (b"PKST\x09" + bytes(KeyStream.from_seed(SEED, STATION).export_state().reveal())[5:],
         "version 9"),
    ],
)
def test_from_state_rejects_bad_blobs(blob: bytes, fragment: str) -> None:
    with pytest.raises(DrbgError, match=fragment):
        KeyStream.from_state(blob)


def test_argument_checks_and_seed() -> None:
    with pytest.raises(DrbgError, match="24"):
        KeyStream.from_seed(SEED, STATION).next_key(24)
    with pytest.raises(DrbgError, match="31 bytes"):
        KeyStream.from_seed(Secret(bytes(31)), STATION)
    seed = generate_seed(lambda n: bytes([7]) * n)
    assert seed == bytes([7]) * 32
    assert len(generate_seed()) == 32
    assert repr(KeyStream.from_seed(SEED, STATION)) == "KeyStream(next_index=0)"


def test_exhausted_stream_stops_at_a_consistent_index() -> None:
    blob = bytes(KeyStream.from_seed(SEED, STATION).export_state().reveal())
    stream = KeyStream.from_state(blob[:-8] + (2**48).to_bytes(8, "big"))
    with pytest.raises(ReseedRequired):
        stream.advance_to(5)
    assert stream.next_index == 1  # the one allowed generate happened, and is counted
    with pytest.raises(ReseedRequired):
        stream.next_key(32)
    assert stream.next_index == 1
