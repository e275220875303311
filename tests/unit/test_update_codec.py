"""Update protocol encodings: sizes, round trips, one refusal per malformation; versions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.errors import InstallRefused, InvalidRequest
from provisioner.update.codec import (
    MANIFEST_SIZE,
    REQUEST_SIZE,
    RESULT_SIZE,
    Manifest,
    Outcome,
    Reason,
    ResultReport,
    UpdateRequest,
)
from provisioner.update.versions import format_version, parse_version

U32 = st.integers(0, 0xFFFFFFFF)


def test_fixed_sizes() -> None:
    assert (REQUEST_SIZE, MANIFEST_SIZE, RESULT_SIZE) == (40, 144, 24)


@given(U32, U32, U32, st.binary(min_size=16, max_size=16))
def test_request_round_trip(device_id: int, current: int, counter: int, nonce: bytes) -> None:
    request = UpdateRequest(device_id, current, counter, nonce)
    assert UpdateRequest.parse(request.to_bytes()) == request


@given(st.builds(Manifest, U32, U32, U32, U32, U32, U32, st.binary(min_size=16, max_size=16),
                 st.binary(min_size=12, max_size=12), st.binary(min_size=64, max_size=64),
                 st.integers(0, 2**64 - 1), st.binary(min_size=8, max_size=8)))
def test_manifest_round_trip(manifest: Manifest) -> None:
    assert Manifest.parse(manifest.to_bytes()) == manifest


@given(st.builds(ResultReport, st.sampled_from(list(Outcome)), st.sampled_from(list(Reason)),
                 U32, U32, U32, U32))
def test_result_round_trip(report: ResultReport) -> None:
    assert ResultReport.parse(report.to_bytes()) == report


@pytest.mark.parametrize(("data", "words"), [
    (b"PVUQ\x01" + bytes(34), "40"),
    (b"XXXX\x01" + bytes(35), "magic"),
    (b"PVUQ\x02" + bytes(35), "format"),
    (b"PVUQ\x01\x01" + bytes(34), "reserved"),
])
def test_malformed_requests_are_refused_saying_why(data: bytes, words: str) -> None:
    with pytest.raises(InstallRefused) as caught:
        UpdateRequest.parse(data)
    assert caught.value.reason == "malformed"
    assert words in str(caught.value)


def test_unknown_outcome_in_a_result_is_refused() -> None:
    data = bytearray(ResultReport(Outcome.installed, Reason.none, 1, 2, 3, 4).to_bytes())
    data[5] = 9
    with pytest.raises(InstallRefused):
        ResultReport.parse(bytes(data))


@pytest.mark.parametrize(("text", "value"), [("1.2.3", 0x00010203), ("0.0.1", 1),
                                             ("65535.255.255", 0xFFFFFFFF)])
def test_versions(text: str, value: int) -> None:
    assert parse_version(text) == value
    assert format_version(value) == text


@pytest.mark.parametrize("text", ["1.2", "1.256.0", "65536.0.0", "v1.0.0", ""])
def test_bad_versions(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_version(text)
