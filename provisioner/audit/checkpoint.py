"""Signed checkpoints of the audit chain: the head and periodic (seq, hash) anchors (pure).

A checkpoint is the manufacturer key's signature over "the entry with signature counter
``seq`` has hash ``hash``" (like a cash-register security module's signature counter). As
every entry's hash covers the one before it, a valid checkpoint vouches for every entry up to
its seq: the site's head checkpoint makes a shortened chain visible, and a checkpoint kept by
the owner proves that a later export continues the one it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provisioner.audit.chain import GENESIS_HASH, JSON, AuditEntry, canonical_json, verify_chain
from provisioner.audit.chain import is_signed as entry_is_signed
from provisioner.errors import AuditError, BadSignature, ChainBroken

if TYPE_CHECKING:
    from provisioner.crypto.signing import Signer, VerifyKey

CHECKPOINT_DOMAIN = "provisioner-audit-checkpoint/1"
CHECKPOINT_INTERVAL = 1000  # the site stores a checkpoint every this many entries


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that entry ``seq`` has hash ``hash`` (seq 0: the empty chain)."""

    seq: int
    hash: str
    time: str
    key_id: str
    signature: str

    def to_dict(self) -> dict[str, JSON]:
        """Return the checkpoint as a plain JSON object."""
        return {"seq": self.seq, "hash": self.hash, "time": self.time,
                "key_id": self.key_id, "signature": self.signature}


def _message(seq: int, hash_: str, time: str, key_id: str) -> bytes:
    # Domain-separated, so no entry signature (over a bare hash) can pass for a checkpoint.
    return canonical_json({"domain": CHECKPOINT_DOMAIN, "seq": seq, "hash": hash_,
                           "time": time, "key_id": key_id})


def sign_checkpoint(seq: int, hash_: str, time: str, signer: Signer) -> Checkpoint:
    """Sign "entry ``seq`` has hash ``hash_``" at ``time`` (RFC 3339 text, site clock)."""
    key_id = signer.key_id
    signature = signer.sign(_message(seq, hash_, time, key_id)).hex()
    return Checkpoint(seq, hash_, time, key_id, signature)


def is_signed(checkpoint: Checkpoint, key: VerifyKey) -> bool:
    """Whether ``checkpoint`` carries a valid signature by ``key``."""
    if checkpoint.key_id != key.key_id:
        return False
    try:
        signature = bytes.fromhex(checkpoint.signature)
        key.verify(_message(checkpoint.seq, checkpoint.hash, checkpoint.time,
                            checkpoint.key_id), signature, what=f"checkpoint {checkpoint.seq}")
    except (BadSignature, ValueError, TypeError):
        return False
    return True


def checkpoint_from_json(obj: object, *, where: str) -> Checkpoint:
    """Build a Checkpoint from parsed JSON, checking every field's type.

    Raises:
        AuditError: a field is missing or has the wrong type.
    """
    fields = {"seq": int, "hash": str, "time": str, "key_id": str, "signature": str}
    if not isinstance(obj, Mapping) or set(obj) != set(fields):
        raise AuditError(f"{where}: a checkpoint holds exactly {sorted(fields)}")
    for name, kind in fields.items():
        if not isinstance(obj[name], kind) or isinstance(obj[name], bool):
            raise AuditError(f"{where}: checkpoint field {name!r} must be {kind.__name__}")
    return Checkpoint(obj["seq"], obj["hash"], obj["time"], obj["key_id"], obj["signature"])


def check_head(entries: list[AuditEntry], head: Checkpoint) -> None:
    """Check that ``entries`` (verified links, ending the chain) end exactly at ``head``.

    Raises:
        ChainBroken: ``truncated`` naming the first missing seq when the entries stop short;
            ``head_mismatch`` naming the head's seq when the entry there has another hash or
            entries go on past the head.
    """
    last_seq = entries[-1].seq if entries else 0
    if last_seq < head.seq:
        raise ChainBroken(last_seq + 1, "truncated")
    if last_seq > head.seq:
        raise ChainBroken(head.seq + 1, "beyond_head")
    last_hash = entries[-1].hash if entries else GENESIS_HASH
    if last_hash != head.hash:
        raise ChainBroken(head.seq, "head_mismatch")


def check_anchor(entries: list[AuditEntry], checkpoint: Checkpoint) -> bool:
    """Whether ``checkpoint`` matches ``entries``: the entry at its seq has its hash, or it
    names the link just before the first entry (a range export continuing it).

    Returns False when the checkpoint's seq lies outside the entries' span.

    Raises:
        ChainBroken: ``not_continuation`` when the span holds the seq with another hash.
    """
    if not entries:
        return False
    first = entries[0]
    if checkpoint.seq == first.seq - 1:
        if first.prev_hash != checkpoint.hash:
            raise ChainBroken(first.seq, "not_continuation")
        return True
    offset = checkpoint.seq - first.seq
    if not 0 <= offset < len(entries):
        return False
    if entries[offset].hash != checkpoint.hash:
        raise ChainBroken(checkpoint.seq, "not_continuation")
    return True


def verify_anchored(
    entries: list[AuditEntry], key: VerifyKey, *, anchors: list[Checkpoint],
    head: Checkpoint | None = None, every_signature: bool = False,
    start: tuple[int, str] = (1, GENESIS_HASH),
) -> int:
    """Verify ``entries`` (a whole chain or a range) against signed checkpoints; return count.

    Every entry's hash, key id, seq and link is checked (:func:`verify_chain`), starting from
    ``start`` (first seq, its prev_hash): a range export names its own first link. Each
    anchor inside the span (and ``head``, which the entries must end at exactly) must be
    signed by ``key`` and match its entry; an anchor then vouches for every entry up to it, so
    only entries after the last anchor have their own signature checked, unless
    ``every_signature``. When an anchor fails, entry signatures are checked to
    name the first bad entry.

    Raises:
        ChainBroken: the first bad seq and kind (see :func:`verify_chain`, :func:`check_head`;
            ``bad_signature``, or ``head_forged``/``bad_checkpoint`` when every entry is signed
            but the head or a checkpoint is not).
    """
    count = verify_chain(entries, key, signatures=every_signature, start=start)
    if every_signature:
        if head is not None:
            check_head(entries, head)
            if not is_signed(head, key):
                raise ChainBroken(head.seq, "head_forged")
        return count
    covered = start[0] - 1
    ordered = sorted(anchors, key=lambda anchor: anchor.seq)
    if head is not None:
        check_head(entries, head)
        ordered.append(head)
    for anchor in ordered:
        if not check_anchor(entries, anchor):
            continue
        if not is_signed(anchor, key):
            _first_unsigned(entries, key, covered, anchor.seq)
            kind = "head_forged" if anchor is head else "bad_checkpoint"
            raise ChainBroken(anchor.seq, kind)
        covered = max(covered, anchor.seq)
    _first_unsigned(entries, key, covered, None)
    return count


def _first_unsigned(
    entries: list[AuditEntry], key: VerifyKey, after: int, until: int | None
) -> None:
    """Raise ``bad_signature`` at the first entry in ``(after, until]`` not signed by ``key``."""
    for entry in entries:
        if entry.seq <= after or (until is not None and entry.seq > until):
            continue
        if not entry_is_signed(entry, key):
            raise ChainBroken(entry.seq, "bad_signature")
