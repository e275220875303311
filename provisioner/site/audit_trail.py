"""The site's own audit chain: verify it against its signed head, export it (whole or a range)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from provisioner.audit.chain import AuditEntry
from provisioner.audit.checkpoint import Checkpoint, verify_anchored
from provisioner.audit.export import write_export
from provisioner.errors import AuditError, ChainBroken
from provisioner.site.context import SiteContext
from provisioner.site.db import repo


@dataclass(frozen=True, slots=True)
class SiteChain:
    """The stored chain read in one snapshot: head first, then entries and checkpoints up to it."""

    head: Checkpoint
    entries: list[AuditEntry]
    checkpoints: list[Checkpoint]


def read_chain(ctx: SiteContext) -> SiteChain:
    """Read the signed head, then every entry and checkpoint up to its seq.

    Reading the head first means entries appended meanwhile are simply not included.
    """
    with ctx.factory() as session:
        head = repo.signed_head(session)
        entries = repo.audit_entries(session, 1, None)
        stored = repo.checkpoints(session, 0, head.seq)
    return SiteChain(head, entries, stored)


def verify_site_chain(ctx: SiteContext, *, every_signature: bool = False) -> SiteChain:
    """Verify the stored chain: links, key, checkpoints and that it ends at the signed head.

    Raises:
        ChainBroken: the first bad seq and its kind (``truncated`` when rows after the head's
            predecessor are gone, ``head_forged`` when the head row is not signed).
    """
    chain = read_chain(ctx)
    entries = chain.entries
    if _appended_after(chain):
        # Committed after the head was read: they belong to a later head. Rows past the head
        # that do not link on to it stay in, and are named as damage (beyond_head).
        entries = [entry for entry in entries if entry.seq <= chain.head.seq]
    if not entries:
        # An initialised site always holds its site_initialised entry.
        raise ChainBroken(1, "truncated")
    verify_anchored(entries, ctx.signer.verify_key, anchors=chain.checkpoints,
                    head=chain.head, every_signature=every_signature)
    return SiteChain(chain.head, entries, chain.checkpoints)


def _appended_after(chain: SiteChain) -> bool:
    """Whether entries past the head link on to it (a later append, not damage)."""
    beyond = [entry for entry in chain.entries if entry.seq > chain.head.seq]
    return bool(beyond) and (beyond[0].seq, beyond[0].prev_hash) == (
        chain.head.seq + 1, chain.head.hash)


def export_site_audit(
    ctx: SiteContext, path: Path, *, first_seq: int = 1, last_seq: int | None = None
) -> int:
    """Verify the whole stored chain, then export seq ``first_seq..last_seq``; return count.

    Raises:
        ChainBroken: the stored chain is damaged (nothing is exported).
        AuditError: the range is empty or the file cannot be written.
    """
    chain = verify_site_chain(ctx)
    last = chain.head.seq if last_seq is None else min(last_seq, chain.head.seq)
    selected = [entry for entry in chain.entries if first_seq <= entry.seq <= last]
    if not selected:
        raise AuditError(f"no audit entries in seq {first_seq}..{last} "
                         f"(the chain holds 1..{chain.head.seq})")
    write_export(path, selected, ctx.signer, site_name=ctx.site_name, site_head=chain.head,
                 checkpoints=chain.checkpoints)
    return len(selected)


def write_checkpoint(ctx: SiteContext, path: Path) -> Checkpoint:
    """Verify the chain and write its signed head as JSON for the owner to keep.

    Raises:
        ChainBroken: the stored chain is damaged.
        AuditError: the file cannot be written.
    """
    head = verify_site_chain(ctx).head
    try:
        path.write_text(json.dumps(head.to_dict(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise AuditError(f"{path}: cannot write checkpoint: {exc.strerror}") from exc
    return head
