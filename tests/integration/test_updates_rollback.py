"""A failed install keeps the previous image: power cut mid-write, bad digest, failed self-test;
the device's event log and the site's audit say why."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from update_fixtures import UpdateWorld, app_image, device_process, relay, update_world

from provisioner.crypto.secret import Secret
from provisioner.sim.device.device import ReferenceDevice
from provisioner.sim.device.records import Event
from provisioner.update.codec import MANIFEST_SIZE, Manifest, Reason
from provisioner.update.package import seal
from provisioner.update.versions import parse_version

V110 = app_image("release 1.1.0")
V120_BROKEN = b"\xff" * 8 + app_image("release 1.2.0")[8:]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpdateWorld, list[bytes]]]:
    with update_world(tmp_path_factory.mktemp("updates-rollback"), 2) as found:
        found[0].add_release("1.1.0", V110)
        yield found


def _report(w: UpdateWorld, device: ReferenceDevice) -> None:
    """Carry the device's pending outcome to the site (what the relay does first)."""
    pending = device.pending_result()
    assert pending is not None
    site = w.client()
    try:
        parsed = site.report_result(pending.body, pending.mac)
    finally:
        site.close()
    device.acknowledge(parsed.delivery_id)


def _active(device: ReferenceDevice) -> bytes:
    return device.slot_bytes(device.state.active_slot, 4096)


@pytest.mark.parametrize("page", [0, 3, 5])
def test_power_cut_during_the_slot_write_keeps_the_previous_image(
        world: tuple[UpdateWorld, list[bytes]], tmp_path: Path, page: int) -> None:
    w, _chips = world
    before = w.device("VSWD0000")
    version, slot, image = before.state.running_version, before.state.active_slot, _active(before)
    before.flash.close()
    with device_process(w, "VSWD0000", "--power-cut-in-slots", str(page)) as (process, port):
        done = relay(w, port, tmp_path)
        assert process.wait(timeout=30) == -signal.SIGKILL
    assert done.returncode != 0
    assert "link" in done.stderr
    device = w.device("VSWD0000")  # power comes back: boot
    assert (device.state.running_version, device.state.active_slot) == (version, slot)
    assert _active(device) == image
    rolled = [r for r in device.log() if r.event == Event.rolled_back]
    assert rolled[-1].reason == Reason.interrupted
    _report(w, device)
    audited = w.audit("update_rolled_back")[-1]
    assert audited["reason"] == Reason.interrupted.name
    assert audited["delivery_id"] == rolled[-1].value


def test_after_the_power_cuts_a_clean_install_succeeds_then_a_failed_self_test_rolls_back(
        world: tuple[UpdateWorld, list[bytes]], tmp_path: Path) -> None:
    w, _chips = world
    with device_process(w, "VSWD0000") as (_process, port):
        done = relay(w, port, tmp_path)
    assert done.returncode == 0, done.stderr
    assert w.device("VSWD0000").state.running_version == parse_version("1.1.0")
    w.add_release("1.2.0", V120_BROKEN)
    with device_process(w, "VSWD0000") as (_process, port):
        done = relay(w, port, tmp_path)
    assert done.returncode != 0
    assert "self_test_failed" in done.stderr
    device = w.device("VSWD0000")
    assert device.state.running_version == parse_version("1.1.0")
    assert _active(device)[:len(V110)] == V110[:4096]
    assert any(r.event == Event.rolled_back and r.reason == Reason.self_test_failed
               for r in device.log())
    assert w.audit("update_rolled_back")[-1]["reason"] == Reason.self_test_failed.name


def test_a_bad_digest_is_rolled_back_and_reported(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, chips = world
    device = w.device("VSWD0001")
    version = device.state.running_version
    signed = device.make_request()
    site = w.client()
    try:
        _delivery, package = site.request_update(signed.body, signed.mac)
    finally:
        site.close()
    # The site's build went wrong: a manifest, properly signed, whose digest is not the image's.
    manifest = Manifest.parse(package[:MANIFEST_SIZE])
    wrong = replace(manifest, image_digest=bytes(64))
    corrupt = seal(w.updates.context.signer, wrong, app_image("release 1.2.0"),
                   Secret(w.device_key(chips[1])))
    outcome = device.install(corrupt)
    assert outcome.body[6] == Reason.bad_digest
    assert device.state.running_version == version
    assert device.log()[-1].reason == Reason.bad_digest
    _report(w, device)
    assert w.audit("update_rolled_back")[-1]["reason"] == Reason.bad_digest.name
