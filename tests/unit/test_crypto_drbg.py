"""HMAC_DRBG (SP 800-90A §10.1.2, SHA-256): every SHA-256 CAVP vector, limits, state blobs."""

from __future__ import annotations

import hashlib
import hmac
import struct
from pathlib import Path

import pytest

from provisioner.crypto.drbg import RESEED_INTERVAL, HmacDrbg
from provisioner.crypto.secret import Secret
from provisioner.errors import DrbgError, ReseedRequired

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"
FILES = {"no_reseed": "HMAC_DRBG_SHA256.rsp", "reseed": "HMAC_DRBG_SHA256_reseed.rsp"}


def _parse(path: Path) -> list[tuple[str, dict[str, object]]]:
    vectors: list[tuple[str, dict[str, object]]] = []
    section = -1
    current: dict[str, object] = {}
    with path.open() as handle:
        for raw in handle:
            line = raw.strip()
            if line == "[SHA-256]":
                section += 1
            if not line or line.startswith(("#", "[")):
                continue
            name, _, value = (part.strip() for part in line.partition("="))
            if name == "COUNT":
                current = {"additional": []}
                vectors.append((f"s{section}-c{value}", current))
            elif name == "AdditionalInput":
                additional = current["additional"]
                assert isinstance(additional, list)
                additional.append(bytes.fromhex(value))
            else:
                current[name] = bytes.fromhex(value)
    return vectors


def _cases() -> list[object]:
    cases: list[object] = []
    for kind, name in FILES.items():
        path = VECTORS / name
        if not path.exists():
            cases.append(
                pytest.param(
                    kind, {}, id=f"{kind}-absent",
                    marks=pytest.mark.skip(reason=f"CAVP vectors not found at {path}"),
                )
            )
            continue
        cases.extend(pytest.param(kind, vec, id=f"{kind}-{vid}") for vid, vec in _parse(path))
    return cases


CASES = _cases()


def test_all_sha256_vectors_are_present() -> None:
    if not (VECTORS / FILES["reseed"]).exists():
        pytest.skip(f"CAVP vectors not found in {VECTORS}")
    assert len(CASES) == 480


@pytest.mark.parametrize(("kind", "vector"), CASES)
def test_cavp_vector(kind: str, vector: dict[str, object]) -> None:
    def get(name: str) -> bytes:
        value = vector[name]
        assert isinstance(value, bytes)
        return value

    additional = vector["additional"]
    assert isinstance(additional, list)
    assert len(additional) == 2
    expected = get("ReturnedBits")
    drbg = HmacDrbg.instantiate(get("EntropyInput"), get("Nonce"), get("PersonalizationString"))
    if kind == "reseed":
        drbg.reseed(get("EntropyInputReseed"), get("AdditionalInputReseed"))
        assert drbg.reseed_counter == 1
    drbg.generate(len(expected), additional[0])
    assert drbg.generate(len(expected), additional[1]) == expected
    assert drbg.reseed_counter == 3


def _fresh() -> HmacDrbg:
    return HmacDrbg.instantiate(bytes(range(32)), bytes(16), b"test")


def test_export_import_continues_identically() -> None:
    drbg = _fresh()
    drbg.generate(17)
    resumed = HmacDrbg.import_state(drbg.export_state())
    assert resumed.reseed_counter == drbg.reseed_counter == 2
    assert resumed.generate(100, b"x") == drbg.generate(100, b"x")


def _state_with_counter(counter: int) -> bytes:
    blob = bytes(_fresh().export_state().reveal())
    return blob[:-8] + struct.pack(">Q", counter)


def test_reseed_counter_limit_then_reseed_clears_it() -> None:
    drbg = HmacDrbg.import_state(_state_with_counter(RESEED_INTERVAL))
    drbg.generate(32)  # the 2^48-th request is still allowed (§10.1.2.5 step 1: counter > interval)
    with pytest.raises(ReseedRequired):
        drbg.generate(32)
    drbg.reseed(bytes(32))
    assert drbg.reseed_counter == 1
    assert len(drbg.generate(32)) == 32


@pytest.mark.parametrize(
    ("blob", "fragment"),
    [
        (b"PDRB", "bytes"),
        (b"XDRB" + _state_with_counter(1)[4:], "magic"),
        (_state_with_counter(1)[:4] + b"\x02" + _state_with_counter(1)[5:], "version 2"),
        (_state_with_counter(0), "counter 0"),
        (_state_with_counter(RESEED_INTERVAL + 2), "out of range"),
    ],
)
def test_import_rejects_bad_blobs(blob: bytes, fragment: str) -> None:
    with pytest.raises(DrbgError, match=fragment):
        HmacDrbg.import_state(Secret(blob))


def test_input_limits() -> None:
    with pytest.raises(DrbgError, match="at least 32"):
        HmacDrbg.instantiate(bytes(31), bytes(16))
    with pytest.raises(DrbgError, match="at least 32"):
        _fresh().reseed(bytes(16))
    with pytest.raises(DrbgError, match="65536"):
        _fresh().generate(65537)
    assert len(_fresh().generate(65536)) == 65536


def test_copy_is_independent() -> None:
    drbg = _fresh()
    twin = drbg.copy()
    assert drbg.generate(32) == twin.generate(32)
    drbg.generate(1)
    assert drbg.generate(32) != twin.generate(32)
    assert "reseed_counter" in repr(drbg)


def _reference_generate(state: list[bytes], num_bytes: int, additional: bytes) -> bytes:
    # A direct transcription of §10.1.2.2/§10.1.2.5 on the standard library, as an oracle.
    def update(provided: bytes) -> None:
        state[0] = hmac.new(state[0], state[1] + b"\x00" + provided, hashlib.sha256).digest()
        state[1] = hmac.new(state[0], state[1], hashlib.sha256).digest()
        if provided:
            state[0] = hmac.new(state[0], state[1] + b"\x01" + provided, hashlib.sha256).digest()
            state[1] = hmac.new(state[0], state[1], hashlib.sha256).digest()

    if additional:
        update(additional)
    out = b""
    while len(out) < num_bytes:
        state[1] = hmac.new(state[0], state[1], hashlib.sha256).digest()
        out += state[1]
    update(additional)
    return out[:num_bytes]


def test_fast_block_path_and_general_path_match_the_reference() -> None:
    drbg = _fresh()
    blob = bytes(drbg.export_state().reveal())
    state = [blob[5:37], blob[37:69]]
    calls = [(32, b""), (32, b"ai"), (7, b""), (32, b""), (100, b"x" * 40), (0, b"")] * 3
    for num_bytes, additional in calls:
        expected = _reference_generate(state, num_bytes, additional)
        assert drbg.generate(num_bytes, additional) == expected
    assert drbg.generate_block() == _reference_generate(state, 32, b"")
    assert drbg.reseed_counter == len(calls) + 2
