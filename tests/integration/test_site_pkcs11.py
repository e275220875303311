"""The site with its keys on a SoftHSM2 token the test initialises: the whole flow, keys that
cannot leave, a copied site directory that is useless without the token."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pkcs11
import pytest
from cryptography import x509
from hsm_fixtures import USER_PIN, SoftHsm, make_softhsm, pin
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11_flow import Programmed, program_board
from site_fixtures import SiteSetup, build_site, client

from provisioner.audit.chain import build_entry, verify_chain
from provisioner.audit.verify import verify_export
from provisioner.errors import BadSignature, ChainBroken, DecryptError
from provisioner.hsm.errors import TokenNotFound
from provisioner.hsm.pin import PIN_ENV
from provisioner.site import admin
from provisioner.site.context import device_key_aad, open_site
from provisioner.site.db import repo
from provisioner.site.db.models import Device
from provisioner.site.keyprovider.config import read_token_config
from provisioner.site.keyprovider.setup import create_token_keys
from provisioner.site.keyprovider.token_keys import TokenKeys
from provisioner.site.server import run_in_thread
from provisioner.site.sitedir import SiteDir

LABELS = ("provisioner-master", "provisioner-signing", "provisioner-ca")


@pytest.fixture
def token_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SiteSetup, SoftHsm]:
    hsm = make_softhsm(tmp_path / "hsm", monkeypatch)
    config = hsm.init_token("site-token")
    monkeypatch.setenv(PIN_ENV, USER_PIN)
    setup = build_site(tmp_path / "site", stations=2, quantity=4, token=config, pin=pin())
    return setup, hsm


def _served_boards(setup: SiteSetup, count: int) -> list[Programmed]:
    server = run_in_thread(setup.root)
    try:
        return [program_board(server.url, setup, f"ST-{1 + n % 2}", f"c0ffee{n:04x}", n // 2)
                for n in range(count)]
    finally:
        server.stop()


def test_whole_site_flow_runs_on_the_token(
    token_site: tuple[SiteSetup, SoftHsm], tmp_path: Path,
) -> None:
    setup, _ = token_site
    root = setup.root
    for name in ("master.key", "signing_key.pem", "ca_key.pem"):
        assert not (root / name).exists(), f"{name} must not exist on a token site"
    assert read_token_config(root) is not None
    boards = _served_boards(setup, 3)
    ctx = open_site(root)
    try:
        assert isinstance(ctx.keys, TokenKeys)
        with ctx.factory() as session:
            for board in boards:
                device = session.get(Device, board.device_id)
                assert device is not None
                assert device.status == "programmed"
                assert device.image_sha256 == board.image_sha256
                with ctx.keys.unwrap(device.wrapped_key,
                                     device_key_aad(board.device_id, board.drbg_index)) as key:
                    assert bytes(key.reveal()) == board.key
        assert admin.verify_audit(ctx) > 3 * 2
        export = tmp_path / "audit.tar"
        count = admin.export_audit(ctx, export)
        key_id = ctx.signer.key_id
    finally:
        ctx.close()
    summary = verify_export(export, expected_key_id=key_id)
    assert summary.count == count
    # The server certificate and every station certificate chain to the token's CA.
    ca = x509.load_pem_x509_certificate(setup.ca_path.read_bytes())
    server_cert = x509.load_pem_x509_certificate((root / "server.pem").read_bytes())
    server_cert.verify_directly_issued_by(ca)
    station_cert = x509.load_pem_x509_certificate(setup.stations["ST-1"].cert_path.read_bytes())
    station_cert.verify_directly_issued_by(ca)


def test_keys_are_non_extractable_and_export_fails(
    token_site: tuple[SiteSetup, SoftHsm],
) -> None:
    _, hsm = token_site
    lib = pkcs11.lib(str(hsm.module))
    try:
        _attempt_export(lib.get_token(token_label="site-token"))
    finally:
        pkcs11.unload(str(hsm.module))  # the next test's SoftHSM2 configuration must load


def _attempt_export(token: pkcs11.Token) -> None:
    with token.open(user_pin=USER_PIN, rw=True) as session:
        master = session.get_key(object_class=ObjectClass.SECRET_KEY, key_type=KeyType.AES,
                                 label=LABELS[0])
        signing = session.get_key(object_class=ObjectClass.PRIVATE_KEY,
                                  key_type=KeyType.EC_EDWARDS, label=LABELS[1])
        ca = session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC,
                             label=LABELS[2])
        for key in (master, signing, ca):
            assert key[Attribute.EXTRACTABLE] is False
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.NEVER_EXTRACTABLE] is True
            with pytest.raises(p11e.AttributeSensitive):
                key[Attribute.VALUE]
        # Wrapping them out under a key the attacker made is refused too.
        carrier = session.generate_key(KeyType.AES, 256, store=False, template={
            Attribute.WRAP: True, Attribute.EXTRACTABLE: True})
        for key in (master, signing, ca):
            with pytest.raises((p11e.KeyUnextractable, p11e.KeyNotWrappable)):
                carrier.wrap_key(key)
        # Nor can the attribute be flipped back to extractable.
        with pytest.raises(p11e.PKCS11Error):
            master[Attribute.EXTRACTABLE] = True


def test_site_directory_copied_without_the_token_is_useless(
    token_site: tuple[SiteSetup, SoftHsm], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup, _ = token_site
    board = _served_boards(setup, 1)[0]
    ctx = open_site(setup.root)
    genuine = ctx.signer.verify_key
    ctx.close()
    stolen = tmp_path / "stolen"
    shutil.copytree(setup.root, stolen)
    # The attacker's machine has SoftHSM2 and the PIN, but not the site's token.
    attacker = make_softhsm(tmp_path / "attacker-hsm", monkeypatch)
    with pytest.raises(TokenNotFound):
        open_site(stolen)
    # A token of the same label, with keys under the same labels, holds other keys.
    forged = attacker.init_token("site-token")
    scratch = SiteDir(tmp_path / "scratch")
    scratch.root.mkdir()
    create_token_keys(scratch, forged, pin(), "forged", datetime.now(UTC))
    ctx = open_site(stolen)
    try:
        with ctx.factory() as session:
            device = session.get(Device, board.device_id)
            assert device is not None
            with pytest.raises(DecryptError):
                ctx.keys.unwrap(device.wrapped_key,
                                device_key_aad(board.device_id, board.drbg_index))
            entries = repo.audit_entries(session)
        forged_entry = build_entry(prev=entries[-1], time=datetime.now(UTC), actor="admin",
                                   event="order_closed", data={"order_id": setup.order_id},
                                   signer=ctx.signer)
    finally:
        ctx.close()
    assert forged_entry.key_id != genuine.key_id
    with pytest.raises(BadSignature):
        genuine.verify(bytes.fromhex(forged_entry.hash), bytes.fromhex(forged_entry.signature))
    assert verify_chain(entries, genuine) == len(entries)
    with pytest.raises(ChainBroken):
        verify_chain([*entries, forged_entry], genuine)


def test_serve_with_two_workers_each_opens_the_token(
    token_site: tuple[SiteSetup, SoftHsm], tmp_path: Path,
) -> None:
    setup, _ = token_site
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "provisioner.cli", "site", "--site-dir", str(setup.root),
         "serve", "--port", str(port), "--workers", "2"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with client(url, setup.ca_path, None) as http:
                    if http.get("/v1/health").status_code == 200:
                        break
            except httpx.TransportError:
                assert server.poll() is None, "site serve exited"
                assert time.monotonic() < deadline, "site serve did not start"
                time.sleep(0.2)
        # Each worker process logs into the token when it starts (uvicorn spreads the
        # connections over them); grants sign and wrap on whichever worker took them.
        boards = [program_board(url, setup, f"ST-{1 + n % 2}", f"feed{n:04x}", n // 2)
                  for n in range(4)]
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    ctx = open_site(setup.root)
    try:
        with ctx.factory() as session:
            for board in boards:
                device = session.get(Device, board.device_id)
                assert device is not None
                with ctx.keys.unwrap(device.wrapped_key,
                                     device_key_aad(board.device_id, board.drbg_index)) as key:
                    assert bytes(key.reveal()) == board.key
        assert admin.verify_audit(ctx) > 8
    finally:
        ctx.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_concurrent_request_threads_share_the_token_safely(
    token_site: tuple[SiteSetup, SoftHsm],
) -> None:
    # python-pkcs11 initialises the module without locking arguments, so SoftHSM2 runs
    # without its own mutexes: unserialised calls from request threads corrupted its heap
    # ("free(): invalid pointer") in the benchmark. Every call now goes through one lock.
    setup, _ = token_site
    ctx = open_site(setup.root)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(60):
                aad = device_key_aad(n, i)
                secret = bytes([n, i]) * 16
                with ctx.keys.unwrap(ctx.keys.wrap(secret, aad), aad) as back:
                    assert bytes(back.reveal()) == secret
                message = secret + b"audit"
                ctx.signer.verify_key.verify(message, ctx.signer.sign(message))
        except BaseException as exc:  # reported below, with the thread that saw it
            errors.append(exc)

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        ctx.close()
    assert errors == []
