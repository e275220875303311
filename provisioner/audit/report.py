"""Production report computed from audit entries alone (pure): per order, station, operator,
day; refusals by code; alarms; the device list. Rendering lives in ``report_render``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from provisioner.audit.chain import AuditEntry, AuditEvent, is_alarm, is_refusal

UNKNOWN = "(unknown)"
# Outcome columns, in table order; "produced" = programmed + suspect (the board holds an image).
OUTCOMES = ("granted", "programmed", "suspect", "failed", "quarantined", "released")
_OUTCOME_OF_EVENT: dict[str, str] = {
    AuditEvent.grant_issued: "granted",
    AuditEvent.device_programmed: "programmed",
    AuditEvent.device_suspect: "suspect",
    AuditEvent.device_failed: "failed",
    AuditEvent.device_quarantined: "quarantined",
    AuditEvent.reservation_released: "released",
}
_CLOSING = ("programmed", "suspect", "failed", "quarantined", "released")


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm as the report lists it."""

    seq: int
    time: str
    event: str
    subject: str
    detail: str


@dataclass(frozen=True, slots=True)
class DeviceLine:
    """One produced board: who made it where, when, with what image and protection."""

    device_id: int
    chip_uid: str
    order_id: str
    station_id: str
    operator_id: str
    time: str
    status: str
    image_sha256: str
    verified: bool
    protection_level: int


@dataclass(frozen=True, slots=True)
class Filter:
    """Restrict a report to one order and/or UTC days ``from_day..to_day`` (inclusive)."""

    order_id: str | None = None
    from_day: str | None = None
    to_day: str | None = None

    def admits(self, entry: AuditEntry) -> bool:
        """Whether ``entry`` falls inside the filter."""
        day = entry.time[:10]
        if self.from_day is not None and day < self.from_day:
            return False
        if self.to_day is not None and day > self.to_day:
            return False
        return self.order_id is None or entry.data.get("order_id") == self.order_id


@dataclass(slots=True)
class OrderLine:
    """An order's header as created (authorised quantity, firmware, stations)."""

    product: str = UNKNOWN
    authorised: int = 0
    stations: tuple[str, ...] = ()


@dataclass(slots=True)
class ProductionReport:
    """Counts keyed by order, station, operator and UTC day; each maps outcome -> count."""

    orders: dict[str, OrderLine] = field(default_factory=dict)
    by_order: dict[str, Counter[str]] = field(default_factory=dict)
    by_station: dict[str, Counter[str]] = field(default_factory=dict)
    by_operator: dict[str, Counter[str]] = field(default_factory=dict)
    by_day: dict[str, Counter[str]] = field(default_factory=dict)
    by_day_station: dict[tuple[str, str], int] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)
    alarms: list[Alarm] = field(default_factory=list)
    devices: list[DeviceLine] = field(default_factory=list)
    final_status: dict[int, str] = field(default_factory=dict)
    totals: Counter[str] = field(default_factory=Counter)
    entry_count: int = 0
    first_seq: int = 0
    last_seq: int = 0
    first_time: str | None = None
    last_time: str | None = None

    def produced(self, counts: Counter[str]) -> int:
        """Boards holding an image: programmed + suspect."""
        return counts["programmed"] + counts["suspect"]

    def open_reservations(self, counts: Counter[str]) -> int:
        """Grants not yet closed by an outcome."""
        return counts["granted"] - sum(counts[name] for name in _CLOSING)

    def remaining(self, order_id: str) -> int:
        """Authorised units neither produced nor reserved."""
        counts = self.by_order.get(order_id, Counter())
        authorised = self.orders.get(order_id, OrderLine()).authorised
        return authorised - self.produced(counts) - self.open_reservations(counts)

    def yield_percent(self, counts: Counter[str]) -> int:
        """Programmed boards per closed attempt, in whole percent (0 with no attempt)."""
        closed = sum(counts[name] for name in _CLOSING)
        return round(100 * counts["programmed"] / closed) if closed else 0


def _text(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    return UNKNOWN if value is None else str(value)


def _subject(data: Mapping[str, object]) -> str:
    names = ("order_id", "station_id", "operator_id", "device_id", "chip_uid", "code")
    return ", ".join(f"{name}={data[name]}" for name in names if data.get(name) is not None)


def _count(report: ProductionReport, entry: AuditEntry, outcome: str) -> None:
    data = entry.data
    day = entry.time[:10]
    station = _text(data, "station_id")
    keys = ((report.by_order, _text(data, "order_id")), (report.by_station, station),
            (report.by_operator, _text(data, "operator_id")), (report.by_day, day))
    for table, key in keys:
        counts = table.get(key)
        if counts is None:
            counts = table[key] = Counter()
        counts[outcome] += 1
    report.totals[outcome] += 1
    if outcome in ("programmed", "suspect"):
        report.by_day_station[(day, station)] = report.by_day_station.get((day, station), 0) + 1
        protection = data.get("protection_level")
        report.devices.append(DeviceLine(
            device_id=int(str(data.get("device_id", 0))), chip_uid=_text(data, "chip_uid"),
            order_id=_text(data, "order_id"), station_id=station,
            operator_id=_text(data, "operator_id"), time=entry.time, status=outcome,
            image_sha256=_text(data, "image_sha256"), verified=data.get("verified") is True,
            protection_level=protection if isinstance(protection, int) else 0,
        ))
    if outcome != "granted" and isinstance(data.get("device_id"), int):
        report.final_status[int(str(data["device_id"]))] = str(data.get("status", outcome))


def build_report(entries: Iterable[AuditEntry], where: Filter | None = None) -> ProductionReport:
    """Count outcomes, refusals (by code) and alarms from ``entries`` (pure).

    Order headers (``order_created``) are always read; the rest only inside ``where``.
    """
    report = ProductionReport()
    where = where or Filter()
    for entry in entries:
        report.entry_count += 1
        if report.first_time is None:
            report.first_seq, report.first_time = entry.seq, entry.time
        report.last_seq, report.last_time = entry.seq, entry.time
        data = entry.data
        if entry.event == AuditEvent.order_created:
            stations = data.get("stations")
            report.orders[_text(data, "order_id")] = OrderLine(
                product=_text(data, "product"),
                authorised=int(str(data.get("quantity", 0))),
                stations=tuple(str(s) for s in stations) if isinstance(stations, list) else (),
            )
            continue
        if not where.admits(entry):
            continue
        outcome = _OUTCOME_OF_EVENT.get(entry.event)
        if outcome is not None:
            _count(report, entry, outcome)
        elif is_refusal(entry.event):
            report.refusals[_text(data, "code")] += 1
        if is_alarm(entry.event):
            report.alarms.append(Alarm(entry.seq, entry.time, entry.event, _subject(data),
                                       _text(data, "detail") if "detail" in data else ""))
    if where.order_id is not None:
        report.orders = {k: v for k, v in report.orders.items() if k == where.order_id}
    return report
