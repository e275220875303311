"""Admin operations on the firmware archive and production orders."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from hex_generator import emit_ihex, load, patch
from provisioner.audit.chain import AuditEvent
from provisioner.errors import (
    FirmwareProfileMismatch,
    InvalidRequest,
    OrderClosed,
    OrderNotFound,
    StationInactive,
)
from provisioner.site.admin import ADMIN
from provisioner.site.context import SiteContext, firmware_aad
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Firmware, Order, OrderStation, Station
from provisioner.wire import OrderStatus, OrderSummary, check_id


class FirmwareKind(StrEnum):
    """What a firmware archive entry is."""

    bootloader_template = "bootloader-template"
    application = "application"


@dataclass(frozen=True, slots=True)
class FirmwareInfo:
    """A stored firmware entry (no bytes)."""

    firmware_id: str
    kind: str
    product: str
    version: str
    sha256: str
    size_bytes: int


def firmware_manifest(kind: str, product: str, version: str, sha256: str) -> bytes:
    """Return the canonical bytes the manufacturer key signs for a firmware entry."""
    return json.dumps(
        {"kind": kind, "product": product, "sha256": sha256, "version": version},
        sort_keys=True, separators=(",", ":"),
    ).encode()


def add_firmware(
    ctx: SiteContext, path: Path, *, kind: FirmwareKind, product: str, version: str,
    profile: str | None = None,
) -> FirmwareInfo:
    """Store a firmware file (normalised to Intel HEX, wrapped), its digest and signature.

    A bootloader template is checked against the profile's zones by patching it once in
    memory (``ZoneError`` when a zone is missing or not blank) and against the flash range.
    """
    image = load(path)
    if kind == FirmwareKind.bootloader_template:
        if profile is None:
            raise InvalidRequest("a bootloader template needs --profile")
        hw = ctx.firmware.profile(profile)
        layout = hw.patch_layout()
        patch(image, layout, 1, bytes(hw.key_size_bytes)).wipe()
    text = emit_ihex(image).encode("ascii")
    image.wipe()
    digest = hashlib.sha256(text).hexdigest()
    signature = ctx.signer.sign(firmware_manifest(kind, product, version, digest)).hex()
    firmware_id = f"fw-{secrets.token_hex(8)}"
    row = Firmware(
        firmware_id=firmware_id, kind=kind.value, product=product, version=version,
        profile=profile, sha256=digest, signature=signature, key_id=ctx.signer.key_id,
        size_bytes=len(text),
        wrapped_bytes=ctx.keys.wrap(text, firmware_aad(firmware_id)),
        created_at=ctx.clock(),
    )
    with transaction(ctx.factory) as session:
        if session.scalars(select(Firmware).where(
            Firmware.kind == kind.value, Firmware.product == product, Firmware.version == version
        )).first() is not None:
            raise InvalidRequest(f"{kind} {product} {version} is already in the archive")
        session.add(row)
        session.flush()
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=ADMIN,
                          event=AuditEvent.firmware_added,
                          data={"firmware_id": firmware_id, "kind": kind.value,
                                "product": product, "version": version, "image_sha256": digest,
                                "profile": profile, "size_bytes": len(text)})
    return FirmwareInfo(firmware_id, kind.value, product, version, digest, len(text))


def _find_firmware(session: Session, kind: FirmwareKind, product: str, version: str) -> Firmware:
    row = session.scalars(select(Firmware).where(
        Firmware.kind == kind.value, Firmware.product == product, Firmware.version == version
    )).first()
    if row is None:
        raise InvalidRequest(f"no {kind} {product} {version} in the archive")
    return row


class FirmwareLabel(Protocol):
    """What a firmware row says of itself: an ORM row or the grant path's plain facts."""

    @property
    def kind(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def profile(self) -> str | None: ...


def check_firmware_profile(firmware: FirmwareLabel, profile: str) -> None:
    """Refuse firmware registered for another hardware profile than ``profile``.

    An application stored without a profile fits any board; a bootloader template always has
    one (its zones were checked against it by ``add_firmware``).

    Raises:
        FirmwareProfileMismatch: naming the firmware, its profile and the one asked for.
    """
    if firmware.profile is None and firmware.kind == FirmwareKind.application:
        return
    if firmware.profile != profile:
        raise FirmwareProfileMismatch(
            f"{firmware.kind} {firmware.product} {firmware.version} is registered for profile "
            f"{firmware.profile}, not {profile}"
        )


def create_order(
    ctx: SiteContext, *, product: str, profile: str, quantity: int, bootloader: str,
    application: str | None = None, stations: tuple[str, ...] = (), order_id: str | None = None,
) -> str:
    """Create an open order for ``quantity`` units; return its id.

    ``bootloader``/``application`` are versions of the product's firmware; ``stations`` lists
    the stations allowed to serve it (all stations when empty). The profile's SHA-256 is
    recorded with the order.
    """
    if quantity < 1:
        raise InvalidRequest("quantity must be at least 1")
    new_id = check_id("order id", f"o-{secrets.token_hex(6)}" if order_id is None else order_id)
    for station_id in stations:
        check_id("station id", station_id)
    hw = ctx.firmware.profile(profile)
    now = ctx.clock()
    with transaction(ctx.factory) as session:
        boot = _find_firmware(session, FirmwareKind.bootloader_template, product, bootloader)
        app = (None if application is None
               else _find_firmware(session, FirmwareKind.application, product, application))
        for firmware in (boot, app):
            if firmware is not None:
                check_firmware_profile(firmware, profile)
        allowed = list(stations) or list(session.scalars(select(Station.station_id)))
        for station_id in allowed:
            if session.get(Station, station_id) is None:
                raise InvalidRequest(f"station {station_id} is not enrolled")
        session.add(Order(
            order_id=new_id, product=product, profile=profile, profile_sha256=hw.sha256,
            bootloader_id=boot.firmware_id,
            application_id=None if app is None else app.firmware_id,
            authorised_quantity=quantity, produced=0, reserved=0,
            status=OrderStatus.open.value, created_at=now,
        ))
        session.flush()
        session.add_all(OrderStation(order_id=new_id, station_id=s) for s in allowed)
        session.flush()
        repo.append_audit(session, signer=ctx.signer, now=now, actor=ADMIN,
                          event=AuditEvent.order_created,
                          data={"order_id": new_id, "product": product, "profile": profile,
                                "profile_sha256": hw.sha256, "quantity": quantity,
                                "bootloader_id": boot.firmware_id,
                                "application_id": None if app is None else app.firmware_id,
                                "stations": sorted(allowed)})
    return new_id


def add_station_to_order(ctx: SiteContext, order_id: str, station_id: str) -> None:
    """Allow ``station_id`` to serve ``order_id`` from now on (audited).

    Raises:
        OrderNotFound, OrderClosed, StationInactive (not enrolled or revoked),
        InvalidRequest (already allowed).
    """
    with transaction(ctx.factory) as session:
        order = repo.lock_order(session, order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} does not exist")
        if order.status == OrderStatus.closed.value:
            raise OrderClosed(f"order {order_id} is closed")
        station = session.get(Station, station_id)
        if station is None:
            raise StationInactive(f"station {station_id} is not enrolled")
        if station.status == "revoked":
            raise StationInactive(f"station {station_id} is revoked")
        if session.get(OrderStation, (order_id, station_id)) is not None:
            raise InvalidRequest(f"station {station_id} may already serve order {order_id}")
        session.add(OrderStation(order_id=order_id, station_id=station_id))
        session.flush()
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=ADMIN,
                          event=AuditEvent.order_station_added,
                          data={"order_id": order_id, "station_id": station_id})


def _summary(order: Order) -> OrderSummary:
    return OrderSummary(
        order_id=order.order_id, product=order.product, profile=order.profile,
        profile_sha256=order.profile_sha256, authorised_quantity=order.authorised_quantity,
        produced=order.produced, reserved=order.reserved,
        remaining=order.authorised_quantity - order.produced - order.reserved,
        status=OrderStatus(order.status),
    )


def list_orders(ctx: SiteContext, *, station_id: str | None = None,
                only_open: bool = False) -> list[OrderSummary]:
    """Return orders (those ``station_id`` may serve, when given) with their counts."""
    with ctx.factory() as session:
        query = select(Order).order_by(Order.created_at, Order.order_id)
        if station_id is not None:
            query = query.join(OrderStation).where(OrderStation.station_id == station_id)
        if only_open:
            query = query.where(Order.status == OrderStatus.open.value)
        return [_summary(order) for order in session.scalars(query)]


def show_order(ctx: SiteContext, order_id: str) -> OrderSummary:
    """Return one order's counts."""
    with ctx.factory() as session:
        order = session.get(Order, order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} does not exist")
        return _summary(order)


def close_order(ctx: SiteContext, order_id: str) -> None:
    """Close an order under its row lock; no grant is issued for it afterwards."""
    with transaction(ctx.factory) as session:
        order = repo.lock_order(session, order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} does not exist")
        if order.status == OrderStatus.closed.value:
            raise OrderClosed(f"order {order_id} is already closed")
        order.status = OrderStatus.closed.value
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=ADMIN,
                          event=AuditEvent.order_closed,
                          data={"order_id": order_id, "produced": order.produced,
                                "reserved": order.reserved})
