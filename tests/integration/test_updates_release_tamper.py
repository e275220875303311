"""A release row edited in the database is refused ``release_invalid``: nothing delivered, an
alarm naming the release (each tampered field; also on a re-delivery)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select, update
from update_fixtures import UpdateWorld, app_image, update_world

from provisioner.errors import ReleaseInvalid
from provisioner.sim.device.device import Signed
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Release
from provisioner.update.versions import parse_version


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpdateWorld, list[bytes]]]:
    with update_world(tmp_path_factory.mktemp("updates-tamper"), 2) as found:
        yield found


def _release_id(w: UpdateWorld, version: str) -> str:
    with w.updates.context.factory() as session:
        found = session.scalar(select(Release.release_id)
                               .where(Release.version == parse_version(version)))
        assert found is not None
        return found


def _tamper(w: UpdateWorld, release_id: str, **values: object) -> None:
    with transaction(w.updates.context.factory) as session:
        session.execute(update(Release).where(Release.release_id == release_id).values(**values))


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def _refused_invalid(w: UpdateWorld, signed: Signed, release_id: str) -> None:
    deliveries, alarms = w.deliveries(), len(w.audit("alarm_release_invalid"))
    redelivered = len(w.audit("update_redelivered"))
    with pytest.raises(ReleaseInvalid) as caught:
        w.ask(signed)
    assert release_id in caught.value.detail
    assert w.deliveries() == deliveries
    assert len(w.audit("update_redelivered")) == redelivered
    audited = w.audit("alarm_release_invalid")
    assert len(audited) == alarms + 1
    assert audited[-1]["code"] == "release_invalid"
    assert audited[-1]["release_id"] == release_id


def _flip_middle(blob: bytes) -> bytes:
    flipped = bytearray(blob)
    flipped[len(flipped) // 2] ^= 0x01
    return bytes(flipped)


# Each case stores a newer release (so it is the one delivered), edits one field before first
# use, and asks; the edited release stays below the next case's version.
CASES: dict[str, Callable[[Release], dict[str, object]]] = {
    "signature": lambda row: {"signature": _flip_hex(row.signature)},
    "image_sha512": lambda row: {"image_sha512": _flip_hex(row.image_sha512)},
    "version": lambda row: {"version": row.version + 1},
    "requires_version": lambda row: {"requires_version": 0x010000},
    "image_size": lambda row: {"image_size": row.image_size - 1},
    "wrapped_image": lambda row: {"wrapped_image": _flip_middle(row.wrapped_image)},
}


@pytest.mark.parametrize("field", list(CASES))
def test_a_tampered_release_field_is_refused_with_an_alarm(
        world: tuple[UpdateWorld, list[bytes]], field: str) -> None:
    w, _chips = world
    version = f"{2 + list(CASES).index(field)}.0.0"
    w.add_release(version, app_image(f"release {version}"))
    release_id = _release_id(w, version)
    with w.updates.context.factory() as session:
        row = session.get(Release, release_id)
        assert row is not None
        values = CASES[field](row)
    _tamper(w, release_id, **values)
    _refused_invalid(w, w.device("VSWD0000").make_request(), release_id)


def test_a_release_edited_after_delivery_is_not_delivered_again(
        world: tuple[UpdateWorld, list[bytes]]) -> None:
    """Runs last: its release is the newest."""
    w, _chips = world
    w.add_release("20.0.0", app_image("release 20.0.0"))
    release_id = _release_id(w, "20.0.0")
    signed = w.device("VSWD0001").make_request()
    delivery_id, _package = w.ask(signed)
    assert w.ask(signed)[0] == delivery_id  # the intact row: answered again
    with w.updates.context.factory() as session:
        row = session.get(Release, release_id)
        assert row is not None
        signature = row.signature
    _tamper(w, release_id, signature=_flip_hex(signature))
    _refused_invalid(w, signed, release_id)
