"""A grant's firmware: deflated Intel HEX in an envelope; opening inflates it, bounded."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hex_generator import parse_ihex
from provisioner.crypto import envelope, grant_firmware
from provisioner.crypto.grant_firmware import open_sealed
from provisioner.crypto.secret import Secret
from provisioner.errors import DecryptError
from provisioner.wire import template_aad

KEY = Secret(bytes(range(32)))
AAD = template_aad("template", "g-1", 7)
BOOTLOADER = Path(__file__).resolve().parents[2] / "fixtures" / "stm32f103c8" / "bootloader.hex"


def _sealed(plaintext: bytes, aad: bytes = AAD) -> bytes:
    return envelope.encrypt(KEY, plaintext, aad)


def test_the_bench_template_opens_to_its_file_at_a_third_of_its_size() -> None:
    text = BOOTLOADER.read_bytes()
    deflated = grant_firmware.deflate(text)
    assert len(deflated) * 2 < len(text)
    opened = open_sealed(KEY, _sealed(deflated), AAD)
    assert opened == text
    parse_ihex(opened.decode("ascii"))  # what the station does next


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_any_text_round_trips(text: bytes) -> None:
    assert open_sealed(KEY, _sealed(grant_firmware.deflate(text)), AAD) == text


def test_an_envelope_for_another_grant_device_or_format_version_does_not_open() -> None:
    deflated = grant_firmware.deflate(b":00000001FF\n")
    for aad in (template_aad("template", "g-2", 7), template_aad("template", "g-1", 8),
                template_aad("application", "g-1", 7), b"provisioner/template/v1|g-1|7"):
        with pytest.raises(DecryptError, match="authentication"):
            open_sealed(KEY, _sealed(deflated, aad), AAD)


def test_what_is_not_one_complete_zlib_stream_is_refused() -> None:
    deflated = grant_firmware.deflate(BOOTLOADER.read_bytes())
    with pytest.raises(DecryptError, match="not zlib data"):
        open_sealed(KEY, _sealed(BOOTLOADER.read_bytes()), AAD)  # sealed without deflating
    with pytest.raises(DecryptError, match="not one complete zlib stream"):
        open_sealed(KEY, _sealed(deflated[:-40]), AAD)
    with pytest.raises(DecryptError, match="not one complete zlib stream"):
        open_sealed(KEY, _sealed(deflated + b"\x00trailing"), AAD)


def test_a_stream_inflating_past_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grant_firmware, "MAX_TEXT_BYTES", 4096)
    within = b"0" * 4096
    assert open_sealed(KEY, _sealed(zlib.compress(within)), AAD) == within
    with pytest.raises(DecryptError, match="more than 4096 bytes"):
        open_sealed(KEY, _sealed(zlib.compress(within + b"0")), AAD)
    # A bomb: 64 KiB of zlib for 64 MiB of text; refused having inflated one byte past 4 KiB.
    with pytest.raises(DecryptError, match="more than 4096 bytes"):
        open_sealed(KEY, _sealed(zlib.compress(bytes(64 * 2**20), 9)), AAD)
