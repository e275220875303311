"""A lost answer: the very same signed request is answered again; every variant of it is not."""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from update_fixtures import UpdateWorld, app_image, device_process, relay, update_world
from update_lossy_proxy import lossy_proxy

from provisioner.crypto.secret import Secret
from provisioner.errors import AlreadyDelivered, BadMac, Refused, ReplayedNonce
from provisioner.sim.device.device import Signed
from provisioner.update import derive
from provisioner.update.codec import UpdateRequest
from provisioner.update.versions import parse_version

V110 = app_image("release 1.1.0", 16 * 1024)  # its answer is longer than the proxy lets through


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpdateWorld, list[bytes]]]:
    with update_world(tmp_path_factory.mktemp("updates-redelivery"), 4) as found:
        found[0].add_release("1.1.0", V110)
        yield found


def _counts(w: UpdateWorld) -> tuple[int, ...]:
    return (w.deliveries(), len(w.audit("update_delivered")),
            len(w.audit("update_redelivered")), len(w.audit("alarm_clone")))


def _refused(w: UpdateWorld, signed: Signed, expected: type[Refused], event: str) -> Refused:
    """Refused with ``expected``, audited once as ``event``, nothing delivered."""
    before, entries = _counts(w), len(w.audit(event))
    with pytest.raises(expected) as caught:
        w.ask(signed)
    assert w.audit(event)[entries:][-1]["code"] == expected.code
    assert len(w.audit(event)) == entries + 1
    assert _counts(w)[:3] == before[:3]
    return caught.value


def _signed(w: UpdateWorld, chip: bytes, request: UpdateRequest) -> Signed:
    """A request signed under the key of the device with ``chip`` (the test knows it)."""
    key = Secret(w.device_key(chip))
    body = request.to_bytes()
    return Signed(body, derive.mac(derive.request_mac_key(key, request.device_id), body))


def test_lost_answer_is_retried_by_the_relay_and_delivered_once(
        world: tuple[UpdateWorld, list[bytes]], tmp_path: Path) -> None:
    w, _chips = world
    before = _counts(w)
    with lossy_proxy(w.updates.url, lose=1) as proxy, \
            device_process(w, "VSWD0000") as (_process, port):
        done = relay(w, port, tmp_path, site_url=proxy.url)
    assert done.returncode == 0, done.stderr
    assert proxy.lost == 1
    assert "sending the same signed bytes again" in done.stdout
    assert "device installed" in done.stdout
    device = w.device("VSWD0000")
    assert device.state.running_version == parse_version("1.1.0")
    assert device.slot_bytes(1, len(V110)) == V110
    assert _counts(w) == (before[0] + 1, before[1] + 1, before[2] + 1, before[3])
    delivered, again = w.audit("update_delivered")[-1], w.audit("update_redelivered")[-1]
    assert again["delivery_id"] == delivered["delivery_id"]
    assert again["nonce"] == delivered["nonce"]
    assert w.audit("update_installed")[-1]["delivery_id"] == delivered["delivery_id"]
    assert list(tmp_path.iterdir()) == []


def test_the_same_request_gets_the_same_package_until_its_result_is_reported(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, _chips = world
    device = w.device("VSWD0001")
    signed = device.make_request()
    first = w.ask(signed)
    before = _counts(w)
    assert w.ask(signed) == first  # same delivery_id, manifest, signature and ciphertext
    assert w.ask(signed) == first
    assert _counts(w) == (before[0], before[1], before[2] + 2, before[3])
    result = device.install(first[1])
    assert result.body[5] == 1  # installed
    site = w.client()
    try:
        site.report_result(result.body, result.mac)
    finally:
        site.close()
    refusal = _refused(w, signed, ReplayedNonce, "update_refused")
    assert "reported installed" in refusal.detail


def test_variants_of_a_delivered_request_are_refused(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    w, chips = world
    device = w.device("VSWD0002")
    signed = device.make_request()
    delivery_id, _package = w.ask(signed)
    # Same nonce, MAC flipped: spoofing, refused before the nonce is looked at.
    flipped = Signed(signed.body, bytes([signed.mac[0] ^ 1]) + signed.mac[1:])
    _refused(w, flipped, BadMac, "alarm_bad_mac")
    # Same nonce under a valid MAC over other fields (only a holder of the key could):
    # another request, not a retry.
    request = UpdateRequest.parse(signed.body)
    other = UpdateRequest(request.device_id, request.current_version, 7, request.nonce)
    refusal = _refused(w, _signed(w, chips[2], other), ReplayedNonce, "update_refused")
    assert f"delivery {delivery_id}" in refusal.detail
    # This device's request presented as another device's: the MAC is not that device's.
    victim = w.device("VSWD0001").device_id
    relabelled = UpdateRequest(victim, request.current_version, request.security_counter,
                               request.nonce)
    _refused(w, Signed(relabelled.to_bytes(), signed.mac), BadMac, "alarm_bad_mac")
    # A fresh nonce for the same release: a second request, the clone alarm.
    clones = len(w.audit("alarm_clone"))
    fresh = UpdateRequest(request.device_id, request.current_version, 0, os.urandom(16))
    _refused(w, _signed(w, chips[2], fresh), AlreadyDelivered, "alarm_clone")
    assert w.audit("alarm_clone")[clones]["first_request"]["delivery_id"] == delivery_id  # type: ignore[index]
    # The retry itself is still answered (no result reported yet).
    assert w.ask(signed)[0] == delivery_id


def test_the_package_as_raw_body_and_as_json_base64_are_the_same_delivery(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    """The relay accepts the raw package (spec §6); a client that does not gets JSON."""
    w, _chips = world
    signed = w.device("VSWD0003").make_request()
    delivery_id, package = w.ask(signed)
    request = UpdateRequest.parse(signed.body)
    body = {"device_id": request.device_id, "current_version": request.current_version,
            "security_counter": request.security_counter, "nonce": request.nonce.hex(),
            "mac": signed.mac.hex()}
    context = ssl.create_default_context(cafile=str(w.ca_path))
    with httpx.Client(base_url=w.updates.url, verify=context) as http:
        raw = http.post("/v1/updates", json=body,
                        headers={"accept": "application/octet-stream"})
        as_json = http.post("/v1/updates", json=body)
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["provisioner-delivery-id"] == str(delivery_id)
    assert raw.headers["provisioner-version"] == str(parse_version("1.1.0"))
    assert raw.content == package
    assert as_json.headers["content-type"] == "application/json"
    answer = as_json.json()
    assert answer["delivery_id"] == delivery_id
    assert base64.b64decode(answer["package"], validate=True) == package
