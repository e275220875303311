"""Every refusal of the update listener: its code, nothing delivered, an audit entry; clones."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from update_fixtures import UpdateWorld, app_image, clone_board, update_world

from provisioner.crypto.secret import Secret
from provisioner.errors import (
    AlreadyDelivered,
    BadMac,
    BadSignature,
    DowngradeRefused,
    NotEntitled,
    PredecessorRequired,
    RateLimited,
    Refused,
    ReleaseInvalid,
    ReplayedNonce,
    UnknownDevice,
    UpToDate,
)
from provisioner.sim.device.device import Signed, board_paths
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Firmware, Order, Release
from provisioner.site.grants import _firmware
from provisioner.site.updates import devices
from provisioner.update import derive
from provisioner.update.codec import UpdateRequest
from provisioner.update.versions import parse_version

V110 = app_image("release 1.1.0")
V200 = app_image("release 2.0.0")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpdateWorld, list[bytes]]]:
    with update_world(tmp_path_factory.mktemp("updates-refusals"), 3) as found:
        found[0].add_release("1.1.0", V110)
        yield found


def _refused(w: UpdateWorld, signed: Signed, expected: type[Refused], event: str) -> Refused:
    """Assert the request is refused with ``expected``, nothing delivered, one audit entry."""
    deliveries, entries = w.deliveries(), len(w.audit(event))
    with pytest.raises(expected) as caught:
        w.ask(signed)
    assert w.deliveries() == deliveries
    audited = w.audit(event)
    assert len(audited) == entries + 1
    assert audited[-1]["code"] == expected.code
    return caught.value


def _forged(w: UpdateWorld, chip: bytes, device_id: int, current: str) -> Signed:
    """A request the device with ``chip`` could sign (the test holds its key from the site)."""
    request = UpdateRequest(device_id, parse_version(current), 0, os.urandom(16))
    key = Secret(w.device_key(chip))
    return Signed(request.to_bytes(),
                  derive.mac(derive.request_mac_key(key, device_id), request.to_bytes()))


def test_clone_updates_once_then_already_delivered_with_an_alarm_naming_both(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, _chips = world
    clone_board(w.board_dir, "VSWD0000", "CLONE0000", os.urandom(12))
    original = w.device("VSWD0000")
    delivery_id, package = w.ask(original.make_request())
    assert original.install(package).body[5] == 1  # installed
    clone = w.device("CLONE0000")
    assert clone.device_id == original.device_id
    refusal = _refused(w, clone.make_request(), AlreadyDelivered, "alarm_clone")
    assert str(delivery_id) in refusal.detail
    alarm = w.audit("alarm_clone")[-1]
    first, second = alarm["first_request"], alarm["second_request"]
    assert isinstance(first, dict)
    assert isinstance(second, dict)
    assert first["delivery_id"] == delivery_id
    assert first["source_address"] == second["source_address"] == "127.0.0.1"
    assert first["nonce"] != second["nonce"]
    assert first["time"] <= second["time"]
    assert clone.state.running_version == 0  # the clone got nothing


def test_an_id_the_site_never_granted_is_unknown_device_with_an_alarm(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, _chips = world
    clone_board(w.board_dir, "VSWD0001", "FORGED0001", os.urandom(12))
    flash = board_paths(w.board_dir, "FORGED0001")[1]
    profile = w.device("FORGED0001").profile
    content = bytearray(flash.read_bytes())
    offset = profile.id_zone.address - profile.flash.base
    content[offset:offset + 4] = (987_654).to_bytes(4, "little")
    flash.write_bytes(content)
    forged = w.device("FORGED0001")
    assert forged.device_id == 987_654
    _refused(w, forged.make_request(), UnknownDevice, "alarm_unregistered_device")
    assert w.audit("alarm_unregistered_device")[-1]["device_id"] == 987_654


def test_bad_mac_is_refused_with_a_spoofing_alarm(world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, _chips = world
    signed = w.device("VSWD0001").make_request()
    tampered = Signed(signed.body, bytes([signed.mac[0] ^ 1]) + signed.mac[1:])
    _refused(w, tampered, BadMac, "alarm_bad_mac")


def test_replayed_nonce_up_to_date_and_downgrade(world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, chips = world
    device = w.device("VSWD0001")
    w.ask(device.make_request())
    forged = _forged(w, chips[1], device.device_id, "1.1.0")
    _refused(w, forged, UpToDate, "update_refused")
    # Its nonce was used by a refused request (a delivered one: test_updates_redelivery).
    refusal = _refused(w, forged, ReplayedNonce, "update_refused")
    assert "got no delivery" in refusal.detail
    _refused(w, _forged(w, chips[1], device.device_id, "9.0.0"), DowngradeRefused,
             "update_refused")


def test_not_entitled_when_revoked_or_ended_and_entitled_again(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, chips = world
    ctx = w.updates.context
    device = w.device("VSWD0002")
    devices.revoke(ctx, chips[2].hex())
    _refused(w, device.make_request(), NotEntitled, "update_refused")
    devices.entitle(ctx, str(device.device_id), until=datetime.now(UTC) - timedelta(days=1))
    refusal = _refused(w, device.make_request(), NotEntitled, "update_refused")
    assert "ended" in refusal.detail
    devices.entitle(ctx, str(device.device_id), until=datetime.now(UTC) + timedelta(days=30))
    delivery_id, _package = w.ask(device.make_request())
    assert delivery_id > 0


def test_predecessor_required(world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, chips = world
    w.add_release("2.0.0", V200, requires="1.1.0")
    refusal = _refused(w, _forged(w, chips[2], w.device("VSWD0002").device_id, "1.0.0"),
                       PredecessorRequired, "update_refused")
    assert "1.1.0" in refusal.detail


def test_rate_limit_per_source(tmp_path_factory: pytest.TempPathFactory) -> None:
    with update_world(tmp_path_factory.mktemp("updates-rate"), 1, rate_per_s=1.0) as (w, _):
        device = w.device("VSWD0000")
        codes = []
        for _ in range(6):
            try:
                w.ask(device.make_request())
            except Refused as exc:
                codes.append(exc.code)
        # Burst of two (no release yet: up_to_date), then the bucket is empty.
        assert codes[:2] == [UpToDate.code, UpToDate.code]
        assert RateLimited.code in codes[2:]
        assert len(w.audit("update_refused")) == codes.count(UpToDate.code)


def test_signatures_are_checked_on_every_use_of_a_release_or_template(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    """A row changed in the database after it was stored is refused when used (runs last)."""
    w, _chips = world
    ctx = w.updates.context
    w.add_release("3.0.0", app_image("release 3.0.0"))
    with transaction(ctx.factory) as session:
        session.execute(update(Release).where(Release.version == parse_version("3.0.0"))
                        .values(requires_version=0, security_counter=0x030000))
    deliveries = w.deliveries()
    with pytest.raises(ReleaseInvalid) as caught:  # test_updates_release_tamper: each field
        w.ask(w.device("VSWD0002").make_request())
    assert "manufacturer signature does not verify" in caught.value.detail
    assert w.deliveries() == deliveries
    with ctx.factory() as session:  # never committed: the change is rolled back at exit
        order = session.get(Order, w.order_id)
        assert order is not None
        template = session.get(Firmware, order.bootloader_id)
        assert template is not None
        _firmware(ctx, session, template.firmware_id)  # intact: accepted
        template.version = "9.9.9"
        session.flush()
        with pytest.raises(BadSignature):
            _firmware(ctx, session, template.firmware_id)
