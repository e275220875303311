"""The C bootloader speaks the device side of the field-update protocol in the emulator.

Ground truth: ``update_spec`` (the spec written with ``cryptography``), itself checked against
the site's vectors first; packages are sealed for the nonce the device asked with.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from update_spec import (
    REASONS,
    REQUEST,
    RESULT,
    frame,
    mac,
    manifest,
    package_key,
    request_mac_key,
    result_mac_key,
    seal,
)

from hex_generator import patch
from hw_profiles import load_profile
from provisioner.sim.boot_runner import board_from_flash, run_board
from provisioner.sim.firmware import bootloader_template, built_image
from provisioner.sim.swd_board import VirtualSwdBoard

ROOT = Path(__file__).parents[2]
VECTORS = json.loads((ROOT / "tests" / "data" / "updates" / "vectors.json").read_text())
SIGNER = Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex(VECTORS["manufacturer"]["private_seed"]))
PUBLIC = SIGNER.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
DEVICE_KEY = bytes.fromhex(VECTORS["cases"][0]["inputs"]["device_key"])
DEVICE_ID = VECTORS["cases"][0]["inputs"]["device_id"]
CHIP_UID = bytes(range(0xA0, 0xAC))
PROFILE = load_profile("stm32f103c8")
SLOT_A, SLOT_B = 0x08006000, 0x0800A800
V1_0_1 = 0x00010001
CHUNK = 500_000


def factory_flash() -> bytes:
    """A board as the station leaves it: patched bootloader, application 1.0.0 in slot A."""
    flash = bytearray(b"\xff" * PROFILE.flash.size_bytes)
    patched = patch(bootloader_template(PROFILE), PROFILE.patch_layout(), DEVICE_ID, DEVICE_KEY)
    flash[:0x6000] = patched.read(0x08000000, 0x6000)
    app = built_image(PROFILE, "application")
    assert app is not None
    flash[0x6000:0x6000 + len(app)] = app
    return bytes(flash)


class Device:
    """One emulated board; ``power_cycle`` keeps its flash, like pulling the plug."""

    def __init__(self, flash: bytes, power_loss_after_bytes: int | None = None) -> None:
        self.board: VirtualSwdBoard = board_from_flash(
            "stm32f103c8", flash, CHIP_UID, power_loss_after_bytes=power_loss_after_bytes)
        self.banner = run_board(self.board, max_instructions=2_000_000, until=b")\r\n").text

    @property
    def flash(self) -> bytes:
        return bytes(self.board.flash.memory)

    def exchange(self, data: bytes, budget: int = 100_000_000) -> tuple[int, bytes] | None:
        """Send a frame, run until a whole answer frame came back (None if the core died)."""
        usart = self.board.peripherals.usart1 if self.board.peripherals else None
        assert usart is not None
        start = len(usart.transmitted)
        usart.receive(data)
        used = 0
        while used < budget:
            result = run_board(self.board, max_instructions=CHUNK)
            used += result.instructions
            out = bytes(usart.transmitted[start:])
            if len(out) >= 5 and len(out) >= 5 + struct.unpack_from("<I", out, 1)[0]:
                return out[0], out[5:5 + struct.unpack_from("<I", out, 1)[0]]
            if result.stopped == "locked_up":
                return None
        raise AssertionError(f"no answer within {budget} instructions")

    def boot_to_application(self) -> str:
        return run_board(self.board, max_instructions=3_000_000, until=b"running\r\n").text


def request(device: Device, running: tuple[int, int] = (0, 0)) -> bytes:
    """Ask for a request; check its MAC under K_req and (version, counter); return its nonce."""
    answer = device.exchange(frame(0x03))
    assert answer is not None
    kind, payload = answer
    assert kind == 0x83
    assert len(payload) == 104
    body, tag = payload[:40], payload[40:]
    assert tag == mac(request_mac_key(DEVICE_KEY, DEVICE_ID), body)
    magic, fmt, device_id, version, counter, nonce = REQUEST.unpack(body)
    assert (magic, fmt, device_id) == (b"PVUQ", 1, DEVICE_ID)
    assert (version, counter) == running  # (0, 0): the factory image, no floor yet
    return nonce


def result_of(answer: tuple[int, bytes] | None) -> tuple[str, int, int]:
    """(reason, delivery_id, running_version) of a RESULT frame whose MAC verifies."""
    assert answer is not None
    kind, payload = answer
    assert kind in (0x81, 0x84)
    assert len(payload) == 88
    body, tag = payload[:24], payload[24:]
    assert tag == mac(result_mac_key(DEVICE_KEY, DEVICE_ID), body)
    magic, fmt, outcome, reason, device_id, delivery_id, running, _ = RESULT.unpack(body)
    assert (magic, fmt, device_id) == (b"PVUR", 1, DEVICE_ID)
    assert outcome == (1 if reason == 0 else 2)
    return REASONS[reason], delivery_id, running


def package(nonce: bytes, *, version: int = V1_0_1, device_id: int = DEVICE_ID,
            device_key: bytes = DEVICE_KEY, delivery_id: int = 7, requires_version: int = 0,
            security_counter: int = 0, kind: str = "application_slot_b") -> bytes:
    image = built_image(PROFILE, kind)
    assert image is not None
    header = manifest(device_id=device_id, delivery_id=delivery_id, version=version,
                      requires_version=requires_version, security_counter=security_counter,
                      image=image,
                      request_nonce=nonce, package_nonce=bytes(range(12)),
                      issued_at=1_780_000_000, signer_public=PUBLIC)
    return seal(SIGNER, header, image, device_key)


def test_the_spec_helpers_reproduce_the_sites_vectors() -> None:
    assert PUBLIC.hex() == VECTORS["manufacturer"]["public_key"]
    for case in VECTORS["cases"]:
        given = case["inputs"]
        key = bytes.fromhex(given["device_key"])
        image = bytes.fromhex(given["image"])
        header = manifest(device_id=given["device_id"], delivery_id=given["delivery_id"],
                          version=given["release"]["version"],
                          requires_version=given["release"]["requires_version"],
                          security_counter=given["release"]["security_counter"], image=image,
                          request_nonce=bytes.fromhex(given["nonce"]),
                          package_nonce=bytes.fromhex(given["package_nonce"]),
                          issued_at=given["issued_at"], signer_public=PUBLIC)
        assert header.hex() == case["manifest"]
        sealed = seal(SIGNER, header, image, key)
        assert sealed[144:208].hex() == case["signature"]
        assert sealed[208:].hex() == case["ciphertext"]
        assert package_key(key, given["device_id"], given["release"]["version"],
                           given["delivery_id"]).hex() == case["k_pkg"]
        assert mac(request_mac_key(key, given["device_id"]),
                   bytes.fromhex(case["request"])).hex() == case["request_mac"]
        assert mac(result_mac_key(key, given["device_id"]),
                   bytes.fromhex(case["result"])).hex() == case["result_mac"]


def test_the_request_carries_a_nonce_derived_from_key_uid_and_sequence() -> None:
    device = Device(factory_flash())
    nonce = request(device)
    # No TRNG: SHA-512(K_dev || chip UID || boot-state sequence)[0:16]; factory sequence 0.
    assert nonce == hashlib.sha512(DEVICE_KEY + CHIP_UID + struct.pack("<I", 0)).digest()[:16]
    assert request(device) != nonce  # the first request stored a state: the sequence moved


def test_installs_a_package_sealed_for_it_then_boots_the_new_slot() -> None:
    device = Device(factory_flash())
    nonce = request(device)
    assert result_of(device.exchange(frame(0x04, package(nonce)))) == ("none", 7, V1_0_1)
    image = built_image(PROFILE, "application_slot_b")
    assert image is not None
    assert device.flash[SLOT_B - 0x08000000:][:len(image)] == image
    rebooted = Device(device.flash)
    assert rebooted.boot_to_application().splitlines() == ["booting slot B at 0x0800A800",
                                                           "application 1.0.1 running"]
    assert result_of(Device(rebooted.flash).exchange(frame(0x01))) == ("none", 7, V1_0_1)


def _other_device(nonce: bytes) -> bytes:
    return package(nonce, device_id=DEVICE_ID + 1, device_key=bytes(16))


def _flipped_ciphertext(nonce: bytes) -> bytes:
    sealed = bytearray(package(nonce))
    sealed[208 + 100] ^= 0x01
    return bytes(sealed)


def _flipped_manifest(nonce: bytes) -> bytes:
    sealed = bytearray(package(nonce))
    sealed[16] ^= 0x01  # the version: the signature no longer covers it
    return bytes(sealed)


@pytest.mark.parametrize(("make", "reason", "delivery_id"), [
    (_other_device, "wrong_device", 7),
    (_flipped_ciphertext, "decrypt_failed", 7),
    (_flipped_manifest, "bad_signature", 0),
    (lambda nonce: package(nonce, version=0), "downgrade", 7),
    (lambda nonce: package(bytes(16)), "stale_package", 7),
    (lambda nonce: package(nonce)[:200], "malformed", 0),
    (lambda nonce: package(nonce, requires_version=0x00010000), "predecessor_required", 7),
], ids=["another_device", "flipped_byte", "forged_manifest", "downgrade", "stale", "truncated",
        "predecessor"])
def test_a_bad_package_is_refused_and_the_previous_application_boots(make, reason: str,
                                                                     delivery_id: int) -> None:
    device = Device(factory_flash())
    nonce = request(device)
    assert result_of(device.exchange(frame(0x04, make(nonce)))) == (reason, delivery_id, 0)
    assert device.flash[SLOT_A - 0x08000000:0x0800A800 - 0x08000000] == \
        factory_flash()[SLOT_A - 0x08000000:0x0800A800 - 0x08000000]
    rebooted = Device(device.flash)
    assert rebooted.boot_to_application().splitlines() == ["booting slot A at 0x08006000",
                                                           "application 1.0.0 running"]


def test_power_lost_during_the_slot_write_boots_the_previous_application() -> None:
    device = Device(factory_flash())
    nonce = request(device)
    sealed = package(nonce)
    image_size = len(sealed) - 208 - 16
    # After power-on: boot event (16); pass 1 keeps the ciphertext (image_size), then
    # install_started (16) and commit 1 (64); the cut falls 200 bytes into pass 2's write.
    budget = 16 + image_size + 16 + 64 + 200
    cut = Device(device.flash, power_loss_after_bytes=budget)
    assert cut.exchange(frame(0x04, sealed)) is None  # the core died mid-write
    after = Device(cut.flash)
    assert after.boot_to_application().splitlines() == ["booting slot A at 0x08006000",
                                                        "application 1.0.0 running"]
    assert result_of(Device(after.flash).exchange(frame(0x01))) == ("interrupted", 7, 0)


def test_the_security_counter_refuses_a_newer_version_below_its_floor() -> None:
    device = Device(factory_flash())
    first = package(request(device), security_counter=0x00020000)  # 1.0.1 raises the floor
    assert result_of(device.exchange(frame(0x04, first))) == ("none", 7, V1_0_1)
    again = Device(device.flash)
    nonce = request(again, (V1_0_1, 0x00020000))
    later = package(nonce, version=0x00010005, delivery_id=8, kind="application")
    assert result_of(again.exchange(frame(0x04, later))) == ("rollback_counter", 8, V1_0_1)
    assert Device(again.flash).boot_to_application().splitlines() == [
        "booting slot B at 0x0800A800", "application 1.0.1 running"]
