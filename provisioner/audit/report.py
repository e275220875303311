"""Production report computed from audit entries alone, as a text table or self-contained HTML."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape

from provisioner.audit.chain import AuditEntry, AuditEvent

UNKNOWN = "(unknown)"
OUTCOMES = ("granted", "programmed", "failed", "suspect", "quarantined")
_OUTCOME_OF_EVENT: dict[str, str] = {
    AuditEvent.grant_issued: "granted",
    AuditEvent.device_programmed: "programmed",
    AuditEvent.device_failed: "failed",
    AuditEvent.device_suspect: "suspect",
    AuditEvent.device_quarantined: "quarantined",
}
_REFUSAL_EVENTS = (AuditEvent.grant_refused, AuditEvent.update_refused)
_ALARM_EVENTS = tuple(event for event in AuditEvent if event.startswith("alarm_"))


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm entry as the report lists it."""

    seq: int
    time: str
    event: str
    subject: str
    detail: str


@dataclass(slots=True)
class ProductionReport:
    """Counts keyed by order, station and UTC day; each value maps outcome -> count."""

    by_order: dict[str, Counter[str]] = field(default_factory=dict)
    by_station: dict[str, Counter[str]] = field(default_factory=dict)
    by_day: dict[str, Counter[str]] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)
    alarms: list[Alarm] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)
    entry_count: int = 0


def _text(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    return UNKNOWN if value is None else str(value)


def build_report(entries: Iterable[AuditEntry]) -> ProductionReport:
    """Count outcomes, refusals (by code) and alarms from ``entries`` (pure)."""
    report = ProductionReport()
    for entry in entries:
        report.entry_count += 1
        data = entry.data
        if entry.event == AuditEvent.order_created and "order_id" in data:
            report.products[_text(data, "order_id")] = _text(data, "product")
        outcome = _OUTCOME_OF_EVENT.get(entry.event)
        if outcome is not None:
            keys = (
                (report.by_order, _text(data, "order_id")),
                (report.by_station, _text(data, "station_id")),
                (report.by_day, entry.time[:10]),
            )
            for table, key in keys:
                table.setdefault(key, Counter())[outcome] += 1
            report.totals[outcome] += 1
        elif entry.event in _REFUSAL_EVENTS:
            report.refusals[_text(data, "code")] += 1
        elif entry.event in _ALARM_EVENTS:
            subject = ", ".join(
                f"{name}={data[name]}" for name in ("order_id", "station_id", "device_id",
                                                    "chip_uid") if name in data
            )
            report.alarms.append(
                Alarm(entry.seq, entry.time, entry.event, subject, str(data.get("detail", "")))
            )
    return report


def _rows(table: Mapping[str, Counter[str]]) -> list[list[str]]:
    return [[key, *(str(table[key][name]) for name in OUTCOMES)] for key in sorted(table)]


def _printable(text: str) -> str:
    # Audit data is untrusted text: keep terminal control sequences out of the table.
    return "".join(char if char.isprintable() else "?" for char in text)


def _fixed_width(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Lay out columns; the first ``left`` are left-aligned text, the rest right-aligned."""
    rows = [[_printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [
            cell.ljust(width) if index < left else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _order_rows(report: ProductionReport) -> list[list[str]]:
    rows = _rows(report.by_order)
    return [[row[0], report.products.get(row[0], UNKNOWN), *row[1:]] for row in rows]


def render_text(report: ProductionReport) -> str:
    """Render the report as fixed-width text tables."""
    out = [f"Production report ({report.entry_count} audit entries)", ""]
    sections = (
        ("By order", ["order_id", "product", *OUTCOMES], _order_rows(report)),
        ("By station", ["station_id", *OUTCOMES], _rows(report.by_station)),
        ("By day (UTC)", ["day", *OUTCOMES], _rows(report.by_day)),
        ("Totals", ["", *OUTCOMES], [["all", *(str(report.totals[n]) for n in OUTCOMES)]]),
        ("Refusals", ["code", "count"],
         [[code, str(report.refusals[code])] for code in sorted(report.refusals)]),
        ("Alarms", ["seq", "time", "event", "subject", "detail"],
         [[str(a.seq), a.time, a.event, a.subject, a.detail] for a in report.alarms]),
    )
    for title, header, rows in sections:
        out.append(title)
        left = {"By order": 2, "Alarms": len(header)}.get(title, 1)
        out.extend(_fixed_width(header, rows, left) if rows else ["(none)"])
        out.append("")
    return "\n".join(out)


def _svg_bars(title: str, items: list[tuple[str, int]]) -> str:
    """Return an inline SVG horizontal bar chart (labels escaped, no external assets)."""
    bar_h, label_w, chart_w = 18, 180, 360
    peak = max((value for _, value in items), default=0) or 1
    height = 28 + bar_h * max(len(items), 1) + 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + chart_w + 60}" '
        f'height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    for index, (label, value) in enumerate(items):
        y = 24 + index * bar_h
        width = round(chart_w * value / peak)
        parts.append(
            f'<text x="0" y="{y + 13}">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{width}" height="{bar_h - 4}" '
            f'fill="#3a6ea5"/><text x="{label_w + width + 4}" y="{y + 13}">{value}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: ProductionReport, *, title: str = "Production report") -> str:
    """Render a self-contained HTML page (inline CSS and SVG charts, no scripts)."""
    sections = [
        ("By order", _html_table(["order_id", "product", *OUTCOMES], _order_rows(report))),
        ("By station", _svg_bars(
            "Programmed per station",
            [(key, report.by_station[key]["programmed"]) for key in sorted(report.by_station)],
        ) + _html_table(["station_id", *OUTCOMES], _rows(report.by_station))),
        ("By day (UTC)", _svg_bars(
            "Programmed per day",
            [(key, report.by_day[key]["programmed"]) for key in sorted(report.by_day)],
        ) + _html_table(["day", *OUTCOMES], _rows(report.by_day))),
        ("Totals", _svg_bars("Outcomes", [(n, report.totals[n]) for n in OUTCOMES])),
        ("Refusals", _svg_bars(
            "Refusals by code", [(c, report.refusals[c]) for c in sorted(report.refusals)]
        ) + _html_table(["code", "count"],
                        [[c, str(report.refusals[c])] for c in sorted(report.refusals)])),
        ("Alarms", _html_table(
            ["seq", "time", "event", "subject", "detail"],
            [[str(a.seq), a.time, a.event, a.subject, a.detail] for a in report.alarms],
        )),
    ]
    body = "".join(f"<h2>{escape(name)}</h2>{content}" for name, content in sections)
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #999;padding:2px 8px}td{text-align:right}"
        "td:first-child{text-align:left}svg text{font-size:12px}"
    )
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{style}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{report.entry_count} audit entries</p>{body}</body></html>\n"
    )
