"""``checked_data``'s one-walk path takes and refuses exactly what the full checks do.

The full checks (secret-looking names, then canonical JSON, then parsing back) are the
reference: for any data, ``checked_data`` returns what they return or raises what they raise.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provisioner.audit.chain import (
    CheckedData,
    _refuse_secrets,
    build_entry,
    canonical_json,
    checked_data,
    compute_hash,
)
from provisioner.crypto.signing import SigningKey
from provisioner.errors import AuditDataRefused


class _Colour(StrEnum):
    red = "red"


class _Level(IntEnum):
    two = 2


def _reference(data: Any) -> Any:
    _refuse_secrets(data, "")
    return json.loads(canonical_json(data))


_NAMES = st.sampled_from(["order_id", "device_id", "chip_uid", "pin", "operator_pin",
                          "wrapped_key", "seed", "Secret", "key", "timings_ms", "private_x",
                          "passphrase", "keyboard", "seedling", "ä-name"])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.floats(allow_nan=True),
    st.binary(max_size=4), st.just(_Colour.red), st.just(_Level.two), st.just(b"\x00"),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(_NAMES, inner, max_size=3)),
    max_leaves=8,
)


def _reference_refusal(data: Any) -> str | None:
    try:
        _reference(data)
    except AuditDataRefused as refusal:
        return str(refusal)
    return None


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(_NAMES, _VALUES, max_size=5))
def test_checked_data_agrees_with_the_full_checks(data: dict[str, Any]) -> None:
    refusal = _reference_refusal(data)
    if refusal is not None:
        with pytest.raises(AuditDataRefused, match=re.escape(refusal)):
            checked_data(data)
        return
    expected = _reference(data)
    found = checked_data(data)
    assert isinstance(found, CheckedData)
    assert found == expected
    assert canonical_json(found) == canonical_json(expected)


def test_plain_values_come_back_as_exact_json_types() -> None:
    found = checked_data({"a": (1, "x"), "b": {"c": [True, None]}, "colour": _Colour.red})
    assert found == {"a": [1, "x"], "b": {"c": [True, None]}, "colour": "red"}
    assert type(found["a"]) is list
    assert type(found["colour"]) is str


@pytest.mark.parametrize("data", [
    {"operator_pin": "1234"}, {"nested": {"wrapped_key": "00"}}, {"blob": b"\x00"},
    {"ratio": 0.5}, {"list": [{"seed": 1}]}, {1: "int key"},
])
def test_secrets_and_non_json_are_refused(data: dict[Any, Any]) -> None:
    with pytest.raises(AuditDataRefused):
        checked_data(data)


def test_an_entry_built_from_checked_data_hashes_as_from_the_raw_data() -> None:
    signer = SigningKey.generate()
    raw = {"order_id": "O-1", "steps": ("a", "b"), "level": _Level.two}
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    one = build_entry(prev=None, time=now, actor="a", event="order_created", data=raw,
                      signer=signer)
    two = build_entry(prev=None, time=now, actor="a", event="order_created",
                      data=checked_data(raw), signer=signer)
    assert one.hash == two.hash
    assert one.hash == compute_hash(seq=1, time=one.time, actor="a", event="order_created",
                                    data=_reference(raw), prev_hash=one.prev_hash,
                                    key_id=one.key_id)
