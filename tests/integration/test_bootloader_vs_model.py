"""The same packages are accepted and refused alike by the C bootloader and the Python model.

Both devices start from the same factory flash (patched bootloader, application 1.0.0 in slot A)
and ask with the same request nonce (the model is handed the C device's), so every package is
the same bytes for both; their signed result reports must agree on outcome, reason, delivery
and the version they run afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_bootloader_update import (
    PROFILE,
    PUBLIC,
    V1_0_1,
    Device,
    _flipped_ciphertext,
    _flipped_manifest,
    _other_device,
    factory_flash,
    package,
    request,
    result_of,
)
from update_spec import REASONS, RESULT, frame

from provisioner.crypto.signing import VerifyKey
from provisioner.sim.device import device as device_model

CASES: dict[str, Callable[[bytes], bytes]] = {
    "sealed_for_it": package,
    "another_device": _other_device,
    "flipped_byte": _flipped_ciphertext,
    "forged_manifest": _flipped_manifest,
    "downgrade": lambda nonce: package(nonce, version=0),
    "stale": lambda nonce: package(bytes(16)),
    "truncated": lambda nonce: package(nonce)[:200],
    "predecessor": lambda nonce: package(nonce, requires_version=0x00010000),
    "too_large": lambda nonce: package(nonce, kind="bootloader"),
}


def model_outcome(tmp_path: Path, nonce: bytes, sealed: bytes) -> tuple[str, int, int]:
    flash_path = tmp_path / "model.bin"
    flash_path.write_bytes(factory_flash())
    model = device_model.ReferenceDevice(
        device_model.BoardFlash(flash_path, PROFILE), PROFILE, VerifyKey.from_raw(PUBLIC),
        rng=lambda size: nonce[:size])
    model.boot()
    assert model.make_request().body[24:40] == nonce
    report = model.install(sealed).body
    _, _, outcome, reason, _, delivery_id, running, _ = RESULT.unpack(report)
    assert outcome == (1 if reason == 0 else 2)
    return REASONS[reason], delivery_id, running


@pytest.mark.parametrize("name", list(CASES))
def test_the_c_bootloader_and_the_model_agree(name: str, tmp_path: Path) -> None:
    device = Device(factory_flash())
    nonce = request(device)
    sealed = CASES[name](nonce)
    c_result = result_of(device.exchange(frame(0x04, sealed)))
    assert c_result == model_outcome(tmp_path, nonce, sealed)
    assert (c_result[0] == "none") == (name == "sealed_for_it")
    if name == "sealed_for_it":
        assert c_result[2] == V1_0_1
