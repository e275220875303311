"""Signed checkpoints and anchored verification over in-memory chains (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from provisioner.audit.chain import AuditEntry, AuditEvent, build_entry
from provisioner.audit.checkpoint import (
    Checkpoint,
    check_anchor,
    checkpoint_from_json,
    is_signed,
    sign_checkpoint,
    verify_anchored,
)
from provisioner.crypto.signing import SigningKey
from provisioner.errors import AuditError, ChainBroken

COUNT = 40
SIGNER = SigningKey.generate()


def _chain(signer: SigningKey = SIGNER, count: int = COUNT) -> list[AuditEntry]:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    out: list[AuditEntry] = []
    for i in range(count):
        out.append(build_entry(prev=out[-1] if out else None, time=start + timedelta(seconds=i),
                               actor="site", event=AuditEvent.operator_signed_in,
                               data={"operator_id": f"op-{i}"}, signer=signer))
    return out


CHAIN = _chain()


def _cp(entry: AuditEntry, signer: SigningKey = SIGNER) -> Checkpoint:
    return sign_checkpoint(entry.seq, entry.hash, entry.time, signer)


def _broken(entries: list[AuditEntry], **kwargs: object) -> tuple[int, str]:
    with pytest.raises(ChainBroken) as info:
        verify_anchored(entries, SIGNER.verify_key, **kwargs)  # type: ignore[arg-type]
    return info.value.seq, info.value.kind


def test_checkpoint_round_trip_and_domain_separation() -> None:
    checkpoint = _cp(CHAIN[9])
    assert is_signed(checkpoint, SIGNER.verify_key)
    assert checkpoint_from_json(checkpoint.to_dict(), where="t") == checkpoint
    assert not is_signed(replace(checkpoint, seq=11), SIGNER.verify_key)
    assert not is_signed(checkpoint, SigningKey.generate().verify_key)
    # An entry's own signature (over its bare hash) never passes for a checkpoint.
    as_entry = replace(checkpoint, signature=CHAIN[9].signature)
    assert not is_signed(as_entry, SIGNER.verify_key)
    with pytest.raises(AuditError, match="checkpoint holds exactly"):
        checkpoint_from_json({"seq": 1}, where="t")


def test_whole_chain_verifies_against_head_and_checkpoints() -> None:
    anchors = [_cp(CHAIN[9]), _cp(CHAIN[19])]
    assert verify_anchored(CHAIN, SIGNER.verify_key, anchors=anchors,
                           head=_cp(CHAIN[-1])) == COUNT
    assert verify_anchored(CHAIN, SIGNER.verify_key, anchors=[], head=_cp(CHAIN[-1]),
                           every_signature=True) == COUNT


def test_head_names_truncation_and_forgery() -> None:
    head = _cp(CHAIN[-1])
    assert _broken(CHAIN[:-3], anchors=[], head=head) == (COUNT - 2, "truncated")
    moved_back = replace(_cp(CHAIN[-4]), signature="00" * 64)
    assert _broken(CHAIN[:-3], anchors=[], head=moved_back) == (COUNT - 3, "head_forged")
    assert _broken(CHAIN, anchors=[], head=_cp(CHAIN[-2])) == (COUNT, "beyond_head")


def test_a_bad_entry_signature_under_a_bad_checkpoint_is_named() -> None:
    other = SigningKey.generate()
    tampered = list(CHAIN)
    tampered[14] = replace(tampered[14], signature=other.sign(bytes.fromhex(CHAIN[14].hash))
                           .hex())
    forged_head = replace(_cp(CHAIN[-1]), signature=other.sign(b"x").hex())
    assert _broken(tampered, anchors=[], head=forged_head) == (15, "bad_signature")
    bad_anchor = replace(_cp(CHAIN[19]), signature="00" * 64)
    assert _broken(CHAIN, anchors=[bad_anchor], head=None) == (20, "bad_checkpoint")
    # without anchors, the tail's own signatures are checked
    assert _broken(tampered, anchors=[]) == (15, "bad_signature")


def test_range_verifies_from_its_own_first_link_and_against_a_kept_checkpoint() -> None:
    part = CHAIN[10:25]
    start = (part[0].seq, part[0].prev_hash)
    assert verify_anchored(part, SIGNER.verify_key, anchors=[], start=start) == len(part)
    assert check_anchor(part, _cp(CHAIN[9]))  # the link just before it
    assert check_anchor(part, _cp(CHAIN[20]))
    assert not check_anchor(part, _cp(CHAIN[30]))  # outside the span
    forked = sign_checkpoint(21, "ab" * 32, CHAIN[20].time, SIGNER)
    with pytest.raises(ChainBroken) as info:
        check_anchor(part, forked)
    assert (info.value.seq, info.value.kind) == (21, "not_continuation")
    assert _broken(part[1:], anchors=[], start=start) == (11, "deleted")


def test_an_entry_moved_to_another_seq_is_reordered() -> None:
    swapped = list(CHAIN)
    swapped[5], swapped[6] = replace(CHAIN[6], seq=6), replace(CHAIN[5], seq=7)
    assert _broken(swapped, anchors=[]) == (6, "reordered")
    edited = list(CHAIN)
    edited[5] = replace(CHAIN[5], data={"operator_id": "someone"})
    assert _broken(edited, anchors=[]) == (6, "changed")
