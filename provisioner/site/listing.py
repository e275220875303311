"""What the site admin lists: orders with firmware and stations, the firmware archive, stations
with when they were last seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from provisioner.errors import OrderNotFound
from provisioner.site.context import SiteContext
from provisioner.site.db.models import Firmware, Grant, Order, OrderStation, Station


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order with its counts, firmware versions and allowed stations."""

    order_id: str
    status: str
    product: str
    profile: str
    authorised: int
    produced: int
    reserved: int
    remaining: int
    bootloader: str
    application: str | None
    stations: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StationView:
    """A station and the last time it asked for or completed a grant."""

    station_id: str
    status: str
    next_index: int
    cert_fingerprint: str
    last_seen: datetime | None


def _version(session: Session, firmware_id: str | None) -> str | None:
    if firmware_id is None:
        return None
    row = session.get(Firmware, firmware_id)
    return None if row is None else f"{row.version} ({firmware_id})"


def orders(ctx: SiteContext, order_id: str | None = None) -> list[OrderView]:
    """Return every order (or one), oldest first.

    Raises:
        OrderNotFound: ``order_id`` names no order.
    """
    with ctx.factory() as session:
        query = select(Order).order_by(Order.created_at, Order.order_id)
        if order_id is not None:
            query = query.where(Order.order_id == order_id)
        found = []
        for order in session.scalars(query):
            stations = tuple(sorted(session.scalars(
                select(OrderStation.station_id).where(OrderStation.order_id == order.order_id))))
            found.append(OrderView(
                order.order_id, order.status, order.product, order.profile,
                order.authorised_quantity, order.produced, order.reserved,
                order.authorised_quantity - order.produced - order.reserved,
                _version(session, order.bootloader_id) or "?",
                _version(session, order.application_id), stations, order.created_at,
            ))
    if order_id is not None and not found:
        raise OrderNotFound(f"order {order_id} does not exist")
    return found


def firmware(ctx: SiteContext) -> list[Firmware]:
    """Return the firmware archive entries (metadata; bytes stay wrapped), by product/version."""
    with ctx.factory() as session:
        rows = session.scalars(select(Firmware).order_by(Firmware.product, Firmware.kind,
                                                         Firmware.version)).all()
        session.expunge_all()
        return list(rows)


def stations(ctx: SiteContext) -> list[StationView]:
    """Return every station with its last grant request or completion time."""
    with ctx.factory() as session:
        issued = {row[0]: row[1] for row in session.execute(
            select(Grant.station_id, func.max(Grant.created_at)).group_by(Grant.station_id))}
        completed = {row[0]: row[1] for row in session.execute(
            select(Grant.station_id, func.max(Grant.completed_at)).group_by(Grant.station_id))}
        views = []
        for row in session.scalars(select(Station).order_by(Station.station_id)):
            seen = [t for t in (issued.get(row.station_id), completed.get(row.station_id)) if t]
            views.append(StationView(row.station_id, row.status, row.next_index,
                                     row.cert_fingerprint, max(seen) if seen else None))
        return views
