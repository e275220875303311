"""Device lookup and entitlement for `site device list|show|entitle|revoke`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from provisioner.audit.chain import AuditEvent
from provisioner.errors import InvalidRequest, UnknownDevice
from provisioner.site.admin import ADMIN
from provisioner.site.context import SiteContext
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Device, Entitlement, Order, Release, UpdateDelivery
from provisioner.update.versions import format_version

_DEVICE_ID = re.compile(r"^(0x[0-9a-fA-F]{1,8}|\d{1,10})$")
_CHIP_UID = re.compile(r"^[0-9a-fA-F]{16,64}$")


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    """One delivery as `site device show` lists it."""

    delivery_id: int
    version: str
    delivered_at: datetime
    source_address: str
    status: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device and its update standing."""

    device_id: int
    chip_uid: str
    order_id: str
    product: str
    status: str
    entitlement: str
    deliveries: list[DeliveryInfo] = field(default_factory=list)


def _find(session: Session, ref: str) -> Device:
    """Find a device by device ID (decimal or 0x hex) or chip UID (16 to 64 hex digits)."""
    text = ref.strip()
    device: Device | None
    if _DEVICE_ID.match(text):
        device = session.get(Device, int(text, 0))
    elif _CHIP_UID.match(text):
        device = session.scalars(select(Device).where(Device.chip_uid == text.lower())).first()
    else:
        raise InvalidRequest(f"{ref!r} is neither a device ID nor a chip UID")
    if device is None:
        raise UnknownDevice(f"no device {ref} at this site")
    return device


def _entitlement_text(row: Entitlement | None) -> str:
    if row is None:
        return "entitled"
    if row.revoked:
        return "revoked"
    return "entitled" if row.until is None else f"entitled until {row.until.isoformat()}"


def _info(session: Session, device: Device, *, deliveries: bool) -> DeviceInfo:
    order = session.get(Order, device.order_id)
    found: list[DeliveryInfo] = []
    if deliveries:
        rows = session.execute(
            select(UpdateDelivery, Release.version).join(Release)
            .where(UpdateDelivery.device_id == device.device_id)
            .order_by(UpdateDelivery.delivery_id))
        found = [DeliveryInfo(d.delivery_id, format_version(v), d.delivered_at,
                              d.source_address, d.status, d.reason) for d, v in rows]
    return DeviceInfo(device.device_id, device.chip_uid, device.order_id,
                      order.product if order else "?", device.status,
                      _entitlement_text(session.get(Entitlement, device.device_id)), found)


def list_devices(ctx: SiteContext, *, order_id: str | None = None) -> list[DeviceInfo]:
    """Return every device (of ``order_id`` when given) by device ID."""
    with ctx.factory() as session:
        query = select(Device).order_by(Device.device_id)
        if order_id is not None:
            query = query.where(Device.order_id == order_id)
        return [_info(session, d, deliveries=False) for d in session.scalars(query)]


def show_device(ctx: SiteContext, ref: str) -> DeviceInfo:
    """Return one device with its deliveries."""
    with ctx.factory() as session:
        return _info(session, _find(session, ref), deliveries=True)


def _set(ctx: SiteContext, ref: str, *, revoked: bool, until: datetime | None) -> DeviceInfo:
    now = ctx.clock()
    with transaction(ctx.factory) as session:
        device = _find(session, ref)
        row = session.get(Entitlement, device.device_id)
        if row is None:
            row = Entitlement(device_id=device.device_id, revoked=revoked, until=until,
                              updated_at=now)
            session.add(row)
        else:
            row.revoked, row.until, row.updated_at = revoked, until, now
        session.flush()
        repo.append_audit(session, signer=ctx.signer, now=now, actor=ADMIN,
                          event=AuditEvent.device_revoked if revoked
                          else AuditEvent.device_entitled,
                          data={"device_id": device.device_id, "chip_uid": device.chip_uid,
                                "until": None if until is None else until.isoformat()})
        return _info(session, device, deliveries=False)


def entitle(ctx: SiteContext, ref: str, *, until: datetime | None = None) -> DeviceInfo:
    """Entitle a device to updates (until ``until``, aware UTC, when given)."""
    if until is not None and until.tzinfo is None:
        raise InvalidRequest("the entitlement end needs a time zone")
    return _set(ctx, ref, revoked=False, until=until)


def revoke(ctx: SiteContext, ref: str) -> DeviceInfo:
    """Revoke a device's entitlement: its requests are refused ``not_entitled``."""
    return _set(ctx, ref, revoked=True, until=None)
