"""A board provisioned by the real station flow updates end to end over TLS, through the relay."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from update_fixtures import UpdateWorld, app_image, device_process, relay, update_world

from provisioner.crypto.secret import Secret
from provisioner.errors import InstallRefused
from provisioner.sim.device.device import board_paths
from provisioner.sim.device.records import Event
from provisioner.site.updates.devices import show_device
from provisioner.update.codec import MANIFEST_SIZE, Reason
from provisioner.update.package import decrypt, verify
from provisioner.update.versions import parse_version

V1 = app_image("release 1.1.0")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpdateWorld, list[bytes]]]:
    with update_world(tmp_path_factory.mktemp("updates-flow"), 2) as found:
        found[0].add_release("1.1.0", V1)
        yield found


def test_provisioned_board_installs_an_update_over_tls_through_the_relay(
        world: tuple[UpdateWorld, list[bytes]], tmp_path: Path) -> None:
    w, chips = world
    with device_process(w, "VSWD0000") as (_process, port):
        done = relay(w, port, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "device installed" in done.stdout
    device = w.device("VSWD0000")
    assert device.state.running_version == parse_version("1.1.0")
    assert device.state.active_slot == 1
    assert device.slot_bytes(1, len(V1)) == V1
    events = [r.event for r in device.log()]
    assert events[-6:] == [Event.install_started, Event.slot_written, Event.self_test_passed,
                           Event.installed, Event.result_reported, Event.boot]
    info = show_device(w.updates.context, chips[0].hex())
    assert [(d.version, d.status) for d in info.deliveries] == [("1.1.0", "installed")]
    delivered = w.audit("update_delivered")
    installed = w.audit("update_installed")
    assert delivered[-1]["device_id"] == device.device_id
    assert installed[-1]["delivery_id"] == delivered[-1]["delivery_id"]
    assert list(tmp_path.iterdir()) == []  # the relay wrote nothing


def _package_for(w: UpdateWorld, probe_uid: str) -> tuple[bytes, int]:
    device = w.device(probe_uid)
    signed = device.make_request()
    site = w.client()
    try:
        _delivery, package = site.request_update(signed.body, signed.mac)
    finally:
        site.close()
    return package, device.device_id


def test_the_package_opens_only_on_its_device_and_no_flipped_byte_passes(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, chips = world
    package, device_id = _package_for(w, "VSWD0001")
    own_key = Secret(w.device_key(chips[1]))
    other_key = Secret(w.device_key(chips[0]))
    signed = verify(w.verify_key, package)
    assert bytes(decrypt(signed, own_key)) == V1
    with pytest.raises(InstallRefused) as caught:
        decrypt(signed, other_key)
    assert caught.value.reason == Reason.decrypt_failed.name
    # The other provisioned device refuses it before decrypting: it names another device.
    other = w.device("VSWD0000")
    report = other.install(package)
    assert report.body[6] == Reason.wrong_device
    for position in range(len(package)):
        flipped = bytearray(package)
        flipped[position] ^= 0x01
        with pytest.raises(InstallRefused) as refused:
            decrypt(verify(w.verify_key, bytes(flipped)), own_key)
        expected = ({Reason.malformed.name, Reason.bad_signature.name}
                    if position < MANIFEST_SIZE + 64 else {Reason.decrypt_failed.name})
        assert refused.value.reason in expected, position
    # Through the device itself: a flipped manifest byte and a flipped ciphertext byte.
    device = w.device("VSWD0001")
    before = device.state
    for position in (20, MANIFEST_SIZE + 70, len(package) - 1):
        flipped = bytearray(package)
        flipped[position] ^= 0x80
        outcome = device.install(bytes(flipped))
        assert outcome.body[5] == 2  # rolled_back
        assert device.state.running_version == before.running_version
        assert device.state.active_slot == before.active_slot
    assert device.log()[-1].event == Event.package_refused
    assert device_id == device.device_id


def _needles(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), base64.b64encode(secret)]


def test_no_plaintext_image_or_device_key_in_any_file_written(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    """Site, station, relay and device model files hold neither the image nor a device key.

    The boards' flash files are the chips themselves (the device runs the image from its own
    flash and its bootloader holds its key): they are the one place both belong.
    """
    w, chips = world
    root = w.site.site_dir.parent
    needles = [n for chip in chips for n in _needles(w.device_key(chip))]
    needles += [n for start in range(0, len(V1) - 32, 512) for n in _needles(V1[start:start + 32])]
    flash_files = {board_paths(w.board_dir, uid)[1] for uid in ("VSWD0000", "VSWD0001")}
    scanned = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path in flash_files:
            continue
        data = path.read_bytes()
        scanned += 1
        for needle in needles:
            assert needle not in data, f"{path} holds a plaintext image or key fragment"
    assert scanned >= 5
    # Ground truth: the flash files do hold both, so the search would have found them.
    flash = b"".join(p.read_bytes() for p in flash_files)
    assert w.device_key(chips[0]) in flash
    assert V1[:32] in flash
