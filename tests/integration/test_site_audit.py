"""The audit chain after a scripted session: verifies, exports, and names any tampered seq."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from site_fixtures import build_site, client, grant_body, sign_in
from sqlalchemy import delete, select, update

from provisioner.audit.chain import AuditEntry, verify_chain
from provisioner.audit.verify import verify_export
from provisioner.errors import ChainBroken
from provisioner.site import admin, catalogue
from provisioner.site.context import open_site
from provisioner.site.db import repo
from provisioner.site.db.models import AuditRow
from provisioner.site.server import run_in_thread


@pytest.fixture(scope="module")
def session_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    setup = build_site(root, stations=1, quantity=3)
    server = run_in_thread(root)
    try:
        with client(server.url, setup.ca_path, setup.stations["ST-1"]) as http:
            http.post("/v1/session", json={"operator_id": "alice", "pin": "9999-9999"})
            auth = sign_in(http)
            grant = http.post(f"/v1/orders/{setup.order_id}/grants",
                              json=grant_body("0badc0de", 0), headers=auth).json()
            http.post(f"/v1/grants/{grant['grant_id']}/complete", headers=auth,
                      json={"request_id": "complete-01", "result": "failure"})
            http.post(f"/v1/orders/{setup.order_id}/grants",
                      json=grant_body("0badc0de", 0), headers=auth)
    finally:
        server.stop()
    ctx = open_site(root)
    try:
        catalogue.close_order(ctx, setup.order_id)
    finally:
        ctx.close()
    return root


def _entries(root: Path) -> tuple[list[AuditEntry], object]:
    ctx = open_site(root)
    try:
        with ctx.factory() as session:
            return repo.audit_entries(session), ctx.signer.verify_key
    finally:
        ctx.close()


def test_chain_verifies_and_records_the_session(session_site: Path, tmp_path: Path) -> None:
    entries, verify_key = _entries(session_site)
    assert verify_chain(entries, verify_key) == len(entries)  # type: ignore[arg-type]
    events = [e.event for e in entries]
    for expected in ("site_initialised", "operator_added", "station_enrolled", "firmware_added",
                     "order_created", "operator_sign_in_failed", "operator_signed_in",
                     "grant_issued", "device_failed", "grant_refused", "order_closed"):
        assert expected in events
    text = json.dumps([e.to_dict() for e in entries]).lower()
    assert "4711-2342" not in text
    assert "9999-9999" not in text
    ctx = open_site(session_site)
    try:
        count = admin.export_audit(ctx, tmp_path / "audit.tar")
    finally:
        ctx.close()
    assert verify_export(tmp_path / "audit.tar").count == count


@pytest.mark.parametrize("kind", ["deleted", "changed", "reordered"])
def test_tampering_with_any_one_entry_names_its_seq(session_site: Path, kind: str) -> None:
    entries, verify_key = _entries(session_site)
    for position in range(1, len(entries) - 1):
        seq = entries[position].seq
        tampered = list(entries)
        if kind == "deleted":
            del tampered[position]
        elif kind == "changed":
            tampered[position] = replace(entries[position], actor="mallory")
        else:
            tampered[position], tampered[position + 1] = tampered[position + 1], tampered[position]
        with pytest.raises(ChainBroken) as caught:
            verify_chain(tampered, verify_key)  # type: ignore[arg-type]
        assert caught.value.seq == seq
        assert caught.value.kind == kind


def test_tampering_in_the_database_is_caught_by_the_admin_check(
    session_site: Path, tmp_path: Path,
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(session_site, copy)
    ctx = open_site(copy)
    try:
        with ctx.factory() as session, session.begin():
            victim = session.scalars(select(AuditRow).where(AuditRow.event == "grant_issued")).one()
            seq = victim.seq
            session.execute(update(AuditRow).where(AuditRow.seq == seq)
                            .values(data=victim.data.replace("0badc0de", "0badc0df")))
        with pytest.raises(ChainBroken) as caught:
            admin.verify_audit(ctx)
        assert (caught.value.seq, caught.value.kind) == (seq, "changed")
        with ctx.factory() as session, session.begin():
            session.execute(delete(AuditRow).where(AuditRow.seq == seq))
        with pytest.raises(ChainBroken) as caught:
            admin.verify_audit(ctx)
        assert (caught.value.seq, caught.value.kind) == (seq, "deleted")
    finally:
        ctx.close()
