"""Canonical JSON, entry building and chain verification, including every single-entry tamper."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from provisioner.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    build_entry,
    canonical_json,
    compute_hash,
    verify_chain,
)
from provisioner.crypto.signing import SigningKey
from provisioner.errors import AuditDataRefused, AuditError, ChainBroken

COUNT = 50
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def make_chain(signer: SigningKey, count: int = COUNT, salt: str = "") -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(count):
        entries.append(
            build_entry(
                prev=entries[-1] if entries else None,
                time=START + timedelta(seconds=7 * i),
                actor="station:ST-1",
                event=AuditEvent.device_programmed,
                data={"order_id": f"O-{salt}1", "device_id": 1000 + i, "drbg_index": i},
                signer=signer,
            )
        )
    return entries


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def chain(signer: SigningKey) -> list[AuditEntry]:
    return make_chain(signer)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "é"], "c": {"z": -2, "y": 10**30}}) == (
        '{"a":[true,null,"é"],"b":1,"c":{"y":1000000000000000000000000000000,"z":-2}}'
    ).encode()


@pytest.mark.parametrize("value", [1.5, float("nan"), float("inf"), b"x", {1: 2}, object()])
def test_canonical_json_refuses_non_json_and_floats(value: object) -> None:
    with pytest.raises(AuditDataRefused) as info:
        canonical_json({"outer": [value]})
    assert info.value.key_path.startswith("outer")


@pytest.mark.parametrize(
    ("data", "key_path"),
    [
        ({"master_key": "aa"}, "master_key"),
        ({"station_seed": "aa"}, "station_seed"),
        ({"operator_pin": "1234"}, "operator_pin"),
        ({"nested": {"Passphrase": "x"}}, "nested.Passphrase"),
        ({"client_secret": "x"}, "client_secret"),
        ({"db_password": "x"}, "db_password"),
        ({"template": b"\x00\x01"}, "template"),
        ({"images": [bytearray(b"\xff")]}, "images[0]"),
        ({"key": "x"}, "key"),
        ({"ratio": 0.5}, "ratio"),
    ],
)
def test_build_entry_refuses_secret_looking_data(
    signer: SigningKey, data: dict[str, object], key_path: str
) -> None:
    with pytest.raises(AuditDataRefused) as info:
        build_entry(prev=None, time=START, actor="admin", event="operator_added", data=data,
                    signer=signer)
    assert info.value.key_path == key_path
    assert "1234" not in str(info.value)


def test_build_entry_rejects_naive_time_and_bad_names(signer: SigningKey) -> None:
    with pytest.raises(AuditError, match="timezone-aware"):
        build_entry(prev=None, time=datetime(2026, 1, 1), actor="a", event="order_created",
                    data={}, signer=signer)
    with pytest.raises(AuditError, match="snake_case"):
        build_entry(prev=None, time=START, actor="a", event="Order Created", data={},
                    signer=signer)


def test_entries_link_count_and_render_utc(signer: SigningKey, chain: list[AuditEntry]) -> None:
    assert [e.seq for e in chain] == list(range(1, COUNT + 1))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert chain[1].time == "2026-11-23T08:00:07.000000Z"
    assert chain[0].key_id == signer.key_id
    local = datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    entry = build_entry(prev=None, time=local, actor="a", event="order_created",
                        data={"items": (1, 2)}, signer=signer)
    assert entry.time == "2026-11-23T08:00:00.000000Z"
    assert entry.data == {"items": [1, 2]}
    assert entry.hash == compute_hash(seq=1, time=entry.time, actor="a", event="order_created",
                                      data={"items": [1, 2]}, prev_hash=GENESIS_HASH,
                                      key_id=signer.key_id)


def test_intact_chain_verifies(signer: SigningKey, chain: list[AuditEntry]) -> None:
    assert verify_chain(chain, signer.verify_key) == COUNT
    assert verify_chain([], signer.verify_key) == 0


def test_other_key_is_refused_at_first_entry(chain: list[AuditEntry]) -> None:
    with pytest.raises(ChainBroken) as info:
        verify_chain(chain, SigningKey.generate().verify_key)
    assert (info.value.seq, info.value.kind) == (1, "bad_signature")


def _expect(entries: list[AuditEntry], signer: SigningKey, seq: int, kind: str) -> None:
    with pytest.raises(ChainBroken) as info:
        verify_chain(entries, signer.verify_key)
    assert (info.value.seq, info.value.kind) == (seq, kind)


@pytest.mark.parametrize("i", range(COUNT - 1))
def test_deleting_any_entry_is_detected(
    signer: SigningKey, chain: list[AuditEntry], i: int
) -> None:
    _expect(chain[:i] + chain[i + 1 :], signer, i + 1, "deleted")


def test_deleting_the_head_is_invisible_to_the_chain_alone(
    signer: SigningKey, chain: list[AuditEntry]
) -> None:
    # Truncation needs the head hash kept elsewhere: the export manifest catches it.
    assert verify_chain(chain[:-1], signer.verify_key) == COUNT - 1


TAMPERS = {
    "seq": lambda e: dataclasses.replace(e, seq=e.seq + 100),
    "time": lambda e: dataclasses.replace(e, time="2030-01-01T00:00:00.000000Z"),
    "actor": lambda e: dataclasses.replace(e, actor="mallory"),
    "event": lambda e: dataclasses.replace(e, event="device_failed"),
    "data": lambda e: dataclasses.replace(e, data={**e.data, "device_id": 1}),
    "prev_hash": lambda e: dataclasses.replace(e, prev_hash="f" * 64),
    "hash": lambda e: dataclasses.replace(e, hash="0" + e.hash[1:] if e.hash[0] != "0"
                                          else "1" + e.hash[1:]),
    "key_id": lambda e: dataclasses.replace(e, key_id="00" * 8),
    "signature": lambda e: dataclasses.replace(
        e, signature=("0" if e.signature[0] != "0" else "1") + e.signature[1:]),
}


@pytest.mark.parametrize("field", sorted(TAMPERS))
@pytest.mark.parametrize("i", range(COUNT))
def test_changing_any_field_of_any_entry_is_detected(
    signer: SigningKey, chain: list[AuditEntry], i: int, field: str
) -> None:
    tampered = list(chain)
    tampered[i] = TAMPERS[field](chain[i])
    _expect(tampered, signer, i + 1, "bad_signature" if field == "signature" else "changed")


@pytest.mark.parametrize("i", range(COUNT - 1))
def test_swapping_neighbours_is_detected(
    signer: SigningKey, chain: list[AuditEntry], i: int
) -> None:
    swapped = list(chain)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    _expect(swapped, signer, i + 1, "reordered")


def test_repeated_entry_is_reordered(signer: SigningKey, chain: list[AuditEntry]) -> None:
    _expect([*chain[:10], chain[3], *chain[10:]], signer, 4, "reordered")


@pytest.mark.parametrize("keep_key_id", [True, False])
@pytest.mark.parametrize("i", range(COUNT))
def test_change_resigned_with_another_key_is_detected(
    signer: SigningKey, chain: list[AuditEntry], i: int, keep_key_id: bool
) -> None:
    forger = SigningKey.generate()
    entry = chain[i]
    key_id = entry.key_id if keep_key_id else forger.key_id
    data = {**entry.data, "device_id": 7}
    digest = compute_hash(seq=entry.seq, time=entry.time, actor=entry.actor, event=entry.event,
                          data=data, prev_hash=entry.prev_hash, key_id=key_id)
    forged = dataclasses.replace(entry, data=data, key_id=key_id, hash=digest,
                                 signature=forger.sign(bytes.fromhex(digest)).hex())
    tampered = list(chain)
    tampered[i] = forged
    _expect(tampered, signer, i + 1, "bad_signature")


@pytest.mark.parametrize("i", range(1, COUNT))
def test_entry_spliced_from_another_chain_breaks_the_link(
    signer: SigningKey, chain: list[AuditEntry], i: int
) -> None:
    other = make_chain(signer, count=i + 1, salt="x")
    spliced = list(chain)
    spliced[i] = other[i]
    _expect(spliced, signer, i + 1, "bad_link")
