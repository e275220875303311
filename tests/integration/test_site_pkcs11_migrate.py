"""`site keys migrate --to-pkcs11`: files → SoftHSM2 token, every device key still derivable,
the audit chain verifiable across the switch, the key files gone only after the round trip."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hsm_fixtures import USER_PIN, make_softhsm
from pkcs11_flow import program_board
from site_fixtures import PRODUCT, PROFILE, REPO, build_site, enrol

from provisioner.audit.verify import verify_export
from provisioner.crypto import envelope
from provisioner.crypto.keystream import KeyStream
from provisioner.errors import DecryptError
from provisioner.hsm.pin import PIN_ENV
from provisioner.site import admin, catalogue
from provisioner.site.admin_cli import site_group
from provisioner.site.context import device_key_aad, open_site, seed_aad
from provisioner.site.db.models import Device, Station
from provisioner.site.keyprovider import migrate
from provisioner.site.keyprovider.token_keys import TokenKeys
from provisioner.site.keys import load_master_key
from provisioner.site.server import run_in_thread
from provisioner.site.sitedir import SiteDirError


def test_files_to_token_keeps_every_key_and_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = build_site(tmp_path / "site", stations=2, quantity=6)
    root = setup.root
    server = run_in_thread(root)
    try:
        before = [program_board(server.url, setup, f"ST-{1 + n % 2}", f"beef{n:04x}", n // 2)
                  for n in range(3)]
    finally:
        server.stop()
    ctx = open_site(root)
    old_key_id = ctx.signer.key_id
    entries_before = admin.verify_audit(ctx)
    ctx.close()
    old_master = load_master_key(root / "master.key")
    ca_pem = (root / "ca.pem").read_bytes()

    hsm = make_softhsm(tmp_path / "hsm", monkeypatch)
    hsm.init_token("site-token")
    monkeypatch.setenv(PIN_ENV, USER_PIN)
    result = CliRunner().invoke(site_group, [
        "--site-dir", str(root), "keys", "migrate", "--to-pkcs11",
        "--pkcs11-module", str(hsm.module), "--token-label", "site-token"])
    assert result.exit_code == 0, result.output
    assert re.search(r"re-wrapped (\d+) secrets, \1 verified", result.output), result.output
    assert f"signing key id   {old_key_id} (unchanged)" in result.output
    for name in ("master.key", "signing_key.pem", "ca_key.pem"):
        assert not (root / name).exists()
    assert not (root / "keys-migrating.json").exists()
    assert (root / "ca.pem").read_bytes() == ca_pem  # stations keep trusting the same CA

    ctx = open_site(root)
    try:
        assert isinstance(ctx.keys, TokenKeys)
        assert ctx.signer.key_id == old_key_id
        with ctx.factory() as session:
            for board in before:
                device = session.get(Device, board.device_id)
                assert device is not None
                blob = device.wrapped_key
                aad = device_key_aad(board.device_id, board.drbg_index)
                with ctx.keys.unwrap(blob, aad) as key:
                    assert bytes(key.reveal()) == board.key
                with pytest.raises(DecryptError):  # a copy of the old key file opens nothing
                    envelope.unwrap(old_master, blob, aad)
            for station in session.query(Station):
                with ctx.keys.unwrap(station.wrapped_seed, seed_aad(station.station_id)) as seed:
                    stream = KeyStream.from_seed(seed, station.station_id)
                    bundle = setup.stations[station.station_id].bundle
                    mine = KeyStream.from_state(bundle.drbg_state.reveal())
                    assert stream.key_at(5, 16) == mine.key_at(5, 16)
        # The chain verifies across the switch, under the same key, with both key events.
        count = admin.verify_audit(ctx)
        assert count == entries_before + 2
        export = tmp_path / "audit.tar"
        admin.export_audit(ctx, export)
        # Enrolment, firmware records and orders after the switch: CA, signer, master on token.
        setup.stations["ST-3"] = enrol(ctx, root, "ST-3", root / "station-side")
        catalogue.add_firmware(ctx, REPO / "fixtures" / PROFILE / "bootloader.hex",
                               kind=catalogue.FirmwareKind.bootloader_template,
                               product=PRODUCT, version="2.0", profile=PROFILE)
        catalogue.create_order(ctx, product=PRODUCT, profile=PROFILE, quantity=2,
                               bootloader="2.0", stations=("ST-3",), order_id="o-late")
    finally:
        ctx.close()
    summary = verify_export(export, expected_key_id=old_key_id)
    assert summary.count == count

    # Production goes on: old stations and one enrolled after the switch get grants.
    server = run_in_thread(root)
    try:
        after = [program_board(server.url, setup, "ST-1", "beef0100", 10),
                 program_board(server.url, setup, "ST-3", "beef0101", 0, "o-late")]
    finally:
        server.stop()
    ctx = open_site(root)
    try:
        with ctx.factory() as session:
            for board in after:
                device = session.get(Device, board.device_id)
                assert device is not None
                with ctx.keys.unwrap(device.wrapped_key,
                                     device_key_aad(board.device_id, board.drbg_index)) as key:
                    assert bytes(key.reveal()) == board.key
        assert admin.verify_audit(ctx) > count
    finally:
        ctx.close()
    old_master.wipe()


def test_an_interrupted_migration_shreds_nothing_and_a_rerun_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = build_site(tmp_path / "site", stations=1, quantity=2)
    root = setup.root
    saved = tmp_path / "saved"
    shutil.copytree(root, saved)
    hsm = make_softhsm(tmp_path / "hsm", monkeypatch)
    hsm.init_token("site-token")
    args = ["--site-dir", str(root), "keys", "migrate", "--to-pkcs11",
            "--pkcs11-module", str(hsm.module), "--token-label", "site-token"]
    key_files = ("master.key", "signing_key.pem", "ca_key.pem")
    # A wrong PIN: one line, nothing changed.
    monkeypatch.setenv(PIN_ENV, "00000000")
    failed = CliRunner().invoke(site_group, args)
    assert failed.exit_code == 1
    errors = [line for line in failed.output.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: token 'site-token' refused the PIN "
                      "(repeated failures may lock the token)"]
    assert "Traceback" not in failed.output
    for name in key_files:
        assert (root / name).read_bytes() == (saved / name).read_bytes()
    # A crash after the re-wrap committed, before the round trip: files kept, site refuses
    # to open half-migrated, a rerun finishes (nothing left to re-wrap, all verified).
    monkeypatch.setenv(PIN_ENV, USER_PIN)

    def crash(*_: object) -> int:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(migrate, "_round_trip", crash)
        interrupted = CliRunner().invoke(site_group, args)
    assert interrupted.exit_code != 0
    for name in key_files:
        assert (root / name).exists()
    with pytest.raises(SiteDirError, match="key migration was interrupted"):
        open_site(root)
    done = CliRunner().invoke(site_group, args)
    assert done.exit_code == 0, done.output
    found = re.search(r"re-wrapped (\d+) secrets, (\d+) verified", done.output)
    assert found is not None
    assert found.group(1) == "0"
    assert int(found.group(2)) >= 3  # seed, transport key, firmware
    for name in key_files:
        assert not (root / name).exists()
    ctx = open_site(root)
    try:
        assert admin.verify_audit(ctx) >= 3
    finally:
        ctx.close()
    again = CliRunner().invoke(site_group, args)
    assert again.exit_code == 1
    assert "already keeps its keys on a PKCS#11 token" in again.output
