"""Serve one update request and one result report: checks, delivery + audit in one transaction."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provisioner.audit.chain import AuditEvent
from provisioner.crypto.secret import Secret
from provisioner.errors import (
    AlreadyDelivered,
    BadMac,
    DeliveryNotFound,
    InvalidRequest,
    Refused,
    ReleaseInvalid,
    ReplayedNonce,
    ResultAlreadyReported,
    UnknownDevice,
)
from provisioner.site.context import SiteContext, device_key_aad
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import (
    Base,
    Device,
    Entitlement,
    Order,
    Release,
    UpdateDelivery,
    UpdateNonce,
)
from provisioner.site.updates.images import ReleaseImages
from provisioner.site.updates.packaging import (
    build_package,
    request_mac_ok,
    result_mac_ok,
)
from provisioner.site.updates.policy import (
    DELIVERED,
    AnsweredRequest,
    DeviceState,
    PriorDelivery,
    check_entitled,
    check_redelivery,
    check_release,
)
from provisioner.site.updates.releases import newest_release, stored_release
from provisioner.update.codec import PACKAGE_NONCE_SIZE, Outcome, Reason, ResultReport
from provisioner.update.codec import UpdateRequest as RequestFields
from provisioner.update.versions import format_version
from provisioner.wire import ResultAck, ResultBody, UpdateRequestBody


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; the site stores UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# What a request reads of earlier deliveries (columns only: no ORM objects on the hot path).
_DELIVERY = (UpdateDelivery.delivery_id, UpdateDelivery.release_id, UpdateDelivery.attempt,
             UpdateDelivery.status, UpdateDelivery.delivered_at, UpdateDelivery.source_address,
             UpdateDelivery.request_nonce, UpdateDelivery.request_mac,
             UpdateDelivery.package_nonce, UpdateDelivery.current_version)

# The hot path's statements, built once (building a statement costs more than running it).
_LOCK_DEVICE = (
    select(Device.wrapped_key, Device.drbg_index, Device.chip_uid, Device.status, Order.product,
           Entitlement.revoked, Entitlement.until)
    .join(Order, Order.order_id == Device.order_id)
    .outerjoin(Entitlement, Entitlement.device_id == Device.device_id)
    .where(Device.device_id == bindparam("device_id"))
    .with_for_update(of=Device))
# Its own statement after the lock: in READ COMMITTED it sees what a request that held the
# lock before committed (the lock statement's own snapshot predates the wait).
_NONCE_USED = select(exists().where(UpdateNonce.device_id == bindparam("device_id"),
                                    UpdateNonce.nonce == bindparam("nonce")))
_ANSWERED = select(*_DELIVERY).where(UpdateDelivery.device_id == bindparam("device_id"),
                                     UpdateDelivery.request_nonce == bindparam("nonce"))
_EARLIER = (select(*_DELIVERY)
            .where(UpdateDelivery.device_id == bindparam("device_id"),
                   UpdateDelivery.release_id == bindparam("release_id"))
            .order_by(UpdateDelivery.delivery_id))
_INSERT_NONCE = insert(Base.metadata.tables[UpdateNonce.__tablename__])
_INSERT_DELIVERY = (insert(Base.metadata.tables[UpdateDelivery.__tablename__])
                    .returning(UpdateDelivery.delivery_id))


@dataclass(frozen=True, slots=True)
class _Earlier:
    """An earlier delivery to the asking device, the ``_DELIVERY`` columns in order."""

    delivery_id: int
    release_id: str
    attempt: int
    status: str
    delivered_at: datetime
    source_address: str
    request_nonce: str
    request_mac: str | None
    package_nonce: str | None
    current_version: int


def _actor(device_id: int) -> str:
    return f"device:{device_id}"


def _device_key(ctx: SiteContext, device: Device) -> Secret:
    return ctx.keys.unwrap(device.wrapped_key, device_key_aad(device.device_id, device.drbg_index))


def _audit(ctx: SiteContext, event: AuditEvent, actor: str, data: dict[str, object],
           session: Session | None = None) -> None:
    if session is not None:
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=actor,
                          event=event, data=data)
        return
    with transaction(ctx.factory) as own:
        repo.append_audit(own, signer=ctx.signer, now=ctx.clock(), actor=actor, event=event,
                          data=data)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A package delivered to one device."""

    delivery_id: int
    version: int
    package: bytes = field(repr=False)

    def to_json(self) -> bytes:
        """The ``UpdateResponse`` body, built directly (a 256 KiB package through a generic
        JSON encoder costs more than the cryptography)."""
        return (b'{"delivery_id":%d,"version":%d,"package":"' % (self.delivery_id, self.version)
                + base64.b64encode(self.package) + b'"}')


@dataclass
class UpdateService:
    """The update listener's logic for one site (holds the per-process release image cache)."""

    ctx: SiteContext
    images: ReleaseImages

    @classmethod
    def open(cls, ctx: SiteContext) -> UpdateService:
        """A service over ``ctx`` with an empty image cache."""
        return cls(ctx, ReleaseImages())

    # --- POST /v1/updates ---------------------------------------------------------------

    def request(self, body: UpdateRequestBody, source: str) -> Delivery:
        """Deliver the device's next release or raise the refusal (audited, nothing delivered).

        Raises:
            Refused: ``unknown_device``, ``bad_mac``, ``replayed_nonce``, ``not_entitled``,
            ``up_to_date``, ``downgrade_refused``, ``predecessor_required``,
            ``already_delivered``, ``release_invalid`` (a stored release fails its checks).
        The very same signed request retried (its answer was lost) gets the same delivery
        again, audited ``update_redelivered``.
        """
        ctx = self.ctx
        fields = RequestFields(body.device_id, body.current_version, body.security_counter,
                               bytes.fromhex(body.nonce))
        where: dict[str, object] = {
            "device_id": body.device_id, "source_address": source, "nonce": body.nonce,
            "current_version": format_version(body.current_version)}
        try:
            return self._deliver(fields, where, source, body.mac)
        except UnknownDevice:
            _audit(ctx, AuditEvent.alarm_unregistered_device, _actor(body.device_id),
                   {**where, "code": UnknownDevice.code,
                    "detail": "a device ID the site never granted asked for an update"})
            raise
        except BadMac:
            _audit(ctx, AuditEvent.alarm_bad_mac, _actor(body.device_id),
                   {**where, "code": BadMac.code,
                    "detail": "request MAC does not verify under the device's key"})
            raise
        except Refused as refusal:
            self._audit_refusal(refusal, fields, where)
            raise

    def _deliver(self, fields: RequestFields, where: dict[str, object], source: str,
                 mac: str) -> Delivery:
        try:
            return self._deliver_once(fields, where, source, mac)
        except IntegrityError as exc:
            # Requests of one device are serialised by its row lock; a unique constraint
            # firing anyway means a concurrent delivery of this release committed first.
            raise AlreadyDelivered(f"release delivered to device {fields.device_id} by a "
                                   "concurrent request") from exc

    def _deliver_once(self, fields: RequestFields, where: dict[str, object], source: str,
                      mac: str) -> Delivery:
        """One transaction: lock the device row, check the MAC, decide, deliver, audit.

        Raises ``UnknownDevice``/``BadMac`` with ``where`` completed for their alarm; the
        caller audits every refusal after this transaction rolled back.
        """
        ctx = self.ctx
        with transaction(ctx.factory) as session:
            # Core statements on the session's connection: no ORM objects on the hot path.
            connection = session.connection()
            found = connection.execute(_LOCK_DEVICE, {"device_id": fields.device_id}).first()
            if found is None:
                raise UnknownDevice(f"device {fields.device_id} is not registered at this site")
            wrapped_key, drbg_index, chip_uid, status, product, revoked, until = found
            where["chip_uid"] = chip_uid
            with ctx.keys.unwrap(wrapped_key,
                                 device_key_aad(fields.device_id, drbg_index)) as key:
                if not request_mac_ok(key, fields, bytes.fromhex(mac)):
                    raise BadMac(f"request MAC for device {fields.device_id} does not verify")
                now = ctx.clock()
                nonce = str(where["nonce"])
                is_replay = connection.scalar(_NONCE_USED, {"device_id": fields.device_id,
                                                         "nonce": nonce})
                answered = self._answered(session, fields, nonce, mac, now) \
                    if is_replay else None
                check_entitled(DeviceState(fields.device_id, status, bool(revoked),
                                           None if until is None else _utc(until)), now)
                if answered is not None:
                    return self._redeliver(session, key, fields, answered, where)
                return self._deliver_new(session, key, fields, str(product), where, source,
                                         mac, now)

    @staticmethod
    def _answered(session: Session, fields: RequestFields, nonce: str, mac: str,
                  now: datetime) -> _Earlier:
        """The delivery a retried request gets again, or raise ``ReplayedNonce``."""
        row = session.connection().execute(
            _ANSWERED, {"device_id": fields.device_id, "nonce": nonce}).first()
        answered = None if row is None else _Earlier(**row._mapping)
        check_redelivery(None if answered is None else AnsweredRequest(
            answered.delivery_id, answered.request_mac, answered.current_version,
            _utc(answered.delivered_at), answered.status),
            nonce, mac, fields.current_version, now)
        assert answered is not None
        return answered

    def _deliver_new(self, session: Session, key: Secret, fields: RequestFields, product: str,
                     where: dict[str, object], source: str, mac: str,
                     now: datetime) -> Delivery:
        ctx = self.ctx
        connection = session.connection()
        release = newest_release(connection, product)
        image = None if release is None else self.images.image(ctx, session, release)
        earlier = [] if release is None else [
            _Earlier(**row._mapping) for row in connection.execute(
                _EARLIER, {"device_id": fields.device_id, "release_id": release.release_id})]
        counting = [d for d in earlier if d.status != Outcome.rolled_back.value]
        prior = None if not counting else PriorDelivery(
            counting[0].delivery_id, _utc(counting[0].delivered_at),
            counting[0].source_address, counting[0].request_nonce)
        terms = check_release(None if release is None else release.terms,
                              fields.current_version, fields.security_counter, prior)
        assert release is not None
        assert image is not None
        nonce, package_nonce = str(where["nonce"]), os.urandom(PACKAGE_NONCE_SIZE)
        attempt = max((d.attempt for d in earlier), default=0) + 1
        connection.execute(_INSERT_NONCE, {"device_id": fields.device_id, "nonce": nonce,
                                           "seen_at": now})
        delivery_id = int(connection.execute(_INSERT_DELIVERY, {
            "device_id": fields.device_id, "release_id": release.release_id,
            "attempt": attempt, "request_nonce": nonce, "request_mac": mac,
            "package_nonce": package_nonce.hex(), "source_address": source,
            "current_version": fields.current_version, "delivered_at": now,
            "status": DELIVERED}).scalar_one())
        package = build_package(
            ctx.signer, key, fields, terms, image,
            image_digest=bytes.fromhex(release.image_sha512), delivery_id=delivery_id,
            package_nonce=package_nonce, issued_at=int(now.timestamp()))
        _audit(ctx, AuditEvent.update_delivered, _actor(fields.device_id),
               {**where, "delivery_id": delivery_id, "release_id": release.release_id,
                "attempt": attempt, "version": format_version(terms.version),
                "image_sha512": release.image_sha512}, session)
        return Delivery(delivery_id, terms.version, package)

    def _redeliver(self, session: Session, key: Secret, fields: RequestFields,
                   answered: _Earlier, where: dict[str, object]) -> Delivery:
        """Answer a retried request again: the same package, re-derived (nothing stored)."""
        ctx = self.ctx
        release = stored_release(session.connection(), answered.release_id)
        assert release is not None
        assert answered.package_nonce is not None  # stored with request_mac (checked)
        image = self.images.image(ctx, session, release)
        package = build_package(
            ctx.signer, key, fields, release.terms, image,
            image_digest=bytes.fromhex(release.image_sha512),
            delivery_id=answered.delivery_id,
            package_nonce=bytes.fromhex(answered.package_nonce),
            issued_at=int(_utc(answered.delivered_at).timestamp()))
        _audit(ctx, AuditEvent.update_redelivered, _actor(fields.device_id),
               {**where, "delivery_id": answered.delivery_id, "release_id": release.release_id,
                "attempt": answered.attempt, "first_source_address": answered.source_address,
                "version": format_version(release.version),
                "image_sha512": release.image_sha512}, session)
        return Delivery(answered.delivery_id, release.version, package)

    def _audit_refusal(self, refusal: Refused, fields: RequestFields,
                       where: dict[str, object]) -> None:
        ctx = self.ctx
        data: dict[str, object] = {**where, "code": refusal.code, "detail": refusal.detail}
        event = AuditEvent.update_refused
        with transaction(ctx.factory) as session:
            if isinstance(refusal, ReleaseInvalid):
                event = AuditEvent.alarm_release_invalid
                data["release_id"] = refusal.release_id
            if isinstance(refusal, AlreadyDelivered):
                event = AuditEvent.alarm_clone
                data["first_request"] = self._first_request(session, fields.device_id)
                data["second_request"] = {"time": ctx.clock().isoformat(),
                                          "source_address": where["source_address"],
                                          "nonce": where["nonce"]}
            if not isinstance(refusal, ReplayedNonce):
                session.merge(UpdateNonce(device_id=fields.device_id, nonce=str(where["nonce"]),
                                          seen_at=ctx.clock()))
            _audit(ctx, event, _actor(fields.device_id), data, session)

    @staticmethod
    def _first_request(session: Session, device_id: int) -> dict[str, object] | None:
        """The delivery an ``already_delivered`` refusal collides with (newest release)."""
        row = session.scalars(
            select(UpdateDelivery).join(Release)
            .where(UpdateDelivery.device_id == device_id,
                   UpdateDelivery.status != Outcome.rolled_back.value)
            .order_by(Release.version.desc(), UpdateDelivery.delivery_id).limit(1)).first()
        if row is None:
            return None
        return {"delivery_id": row.delivery_id, "time": _utc(row.delivered_at).isoformat(),
                "source_address": row.source_address, "nonce": row.request_nonce}

    # --- POST /v1/updates/{delivery_id}/result ------------------------------------------

    def result(self, delivery_id: int, body: ResultBody, source: str) -> ResultAck:
        """Record a device's install outcome (once per delivery), audited.

        Raises:
            Refused: ``delivery_not_found``, ``bad_mac``, ``result_already_reported``,
            ``invalid_request`` (unknown reason name).
        """
        ctx = self.ctx
        if body.reason not in Reason.__members__:
            raise InvalidRequest(f"unknown reason {body.reason!r}")
        report = ResultReport(Outcome(body.outcome), Reason[body.reason], body.device_id,
                              delivery_id, body.running_version, body.security_counter)
        with transaction(ctx.factory) as session:
            row = session.get(UpdateDelivery, delivery_id, with_for_update=True,
                              populate_existing=True)
            device = None if row is None else session.get(Device, row.device_id)
            if row is None or device is None or row.device_id != body.device_id:
                raise DeliveryNotFound(f"no delivery {delivery_id} for device {body.device_id}")
            with _device_key(ctx, device) as key:
                mac_ok = result_mac_ok(key, report, bytes.fromhex(body.mac))
            if mac_ok and row.status != DELIVERED:
                raise ResultAlreadyReported(f"delivery {delivery_id} was reported {row.status}")
            if mac_ok:
                row.status, row.reason = report.outcome.value, report.reason.name
                row.running_version, row.reported_at = report.running_version, ctx.clock()
                session.flush()
            _audit(ctx, (AuditEvent.alarm_bad_mac if not mac_ok
                         else AuditEvent.update_installed if report.outcome == Outcome.installed
                         else AuditEvent.update_rolled_back), _actor(device.device_id),
                   {"delivery_id": delivery_id, "device_id": device.device_id,
                    "source_address": source, "outcome": report.outcome.value,
                    "reason": report.reason.name,
                    "running_version": format_version(report.running_version),
                    "code": None if mac_ok else BadMac.code}, session)
        if not mac_ok:
            raise BadMac(f"result MAC for delivery {delivery_id} does not verify")
        return ResultAck(delivery_id=delivery_id, status=report.outcome.value)
