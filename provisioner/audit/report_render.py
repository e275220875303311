"""Render a ProductionReport: terminal tables, device list CSV/JSON, one self-contained HTML
page (Jinja2 template, pygal SVG charts inlined; no script, no network needed to view it)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass

import pygal
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from pygal.style import Style

from provisioner.audit.report import OUTCOMES, ProductionReport

DEVICE_FIELDS = ("device_id", "chip_uid", "order_id", "station_id", "operator_id", "time",
                 "status", "image_sha256", "verified", "protection_level")
ORDER_HEADER = ["order_id", "product", "authorised", "produced", *OUTCOMES[1:], "reserved",
                "remaining"]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where the numbers come from: the verdict, the key that verified them, the span."""

    source: str
    verdict: str
    key_id: str
    head_seq: int
    head_hash: str


def order_rows(report: ProductionReport) -> list[list[str]]:
    """Per order: header facts, outcome counts, open reservations and remaining units."""
    rows = []
    for order_id in sorted(set(report.orders) | set(report.by_order)):
        counts = report.by_order.get(order_id, Counter())
        line = report.orders.get(order_id)
        rows.append([
            order_id, line.product if line else "(unknown)", str(line.authorised if line else 0),
            str(report.produced(counts)), *(str(counts[n]) for n in OUTCOMES[1:]),
            str(report.open_reservations(counts)), str(report.remaining(order_id)),
        ])
    return rows


def group_rows(report: ProductionReport, table: dict[str, Counter[str]]) -> list[list[str]]:
    """Per station/operator/day: produced, each outcome, yield."""
    return [[key, str(report.produced(table[key])), *(str(table[key][n]) for n in OUTCOMES),
             f"{report.yield_percent(table[key])}%"] for key in sorted(table)]


def group_header(name: str) -> list[str]:
    """Column names of :func:`group_rows`."""
    return [name, "produced", *OUTCOMES, "yield"]


def _printable(text: str) -> str:
    # Audit data is untrusted text: keep terminal control sequences out of the table.
    return "".join(char if char.isprintable() else "?" for char in text)


def _fixed_width(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    rows = [[_printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [cell.ljust(width) if index < left else cell.rjust(width)
                 for index, (cell, width) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _sections(report: ProductionReport) -> list[tuple[str, list[str], list[list[str]], int]]:
    return [
        ("By order", ORDER_HEADER, order_rows(report), 2),
        ("By station", group_header("station_id"), group_rows(report, report.by_station), 1),
        ("By operator", group_header("operator_id"), group_rows(report, report.by_operator), 1),
        ("By day (UTC)", group_header("day"), group_rows(report, report.by_day), 1),
        ("Refusals by code", ["code", "count"],
         [[code, str(report.refusals[code])] for code in sorted(report.refusals)], 1),
        ("Alarms", ["seq", "time", "event", "subject", "detail"],
         [[str(a.seq), a.time, a.event, a.subject, a.detail] for a in report.alarms], 5),
    ]


def render_text(report: ProductionReport, provenance: Provenance) -> str:
    """Render the report as fixed-width terminal tables."""
    out = [f"Production report: {provenance.source}",
           f"verdict: {provenance.verdict}; key {provenance.key_id}; "
           f"head seq {provenance.head_seq} {provenance.head_hash}",
           f"span: seq {report.first_seq}..{report.last_seq}, "
           f"{report.first_time or '-'} .. {report.last_time or '-'} "
           f"({report.entry_count} audit entries)", ""]
    for title, header, rows, left in _sections(report):
        out.append(title)
        out.extend(_fixed_width(header, rows, left) if rows else ["(none)"])
        out.append("")
    return "\n".join(out)


def render_csv(report: ProductionReport) -> str:
    """Render the device list as CSV (header row, one board per line)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=DEVICE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for device in report.devices:
        writer.writerow(asdict(device))
    return buffer.getvalue()


def render_json(report: ProductionReport) -> str:
    """Render the device list as a JSON array."""
    return json.dumps([asdict(device) for device in report.devices], indent=1) + "\n"


_STYLE = Style(background="white", plot_background="white", font_family="sans-serif")


def _inline(chart: pygal.graph.graph.Graph) -> Markup:
    # js=[] keeps pygal from linking its tooltip script: the page works offline.
    svg = chart.render(is_unicode=True, disable_xml_declaration=True)
    return Markup(svg)  # noqa: S704 - pygal escapes the labels and values it draws


def _charts(report: ProductionReport) -> dict[str, Markup]:
    options = {"style": _STYLE, "js": [], "width": 720, "height": 320, "explicit_size": True,
               "print_values": True, "legend_at_bottom": True}
    days = sorted({day for day, _ in report.by_day_station})
    stations = sorted({station for _, station in report.by_day_station})
    per_day = pygal.StackedBar(title="Boards per day per station", **options)
    per_day.x_labels = days
    for station in stations:
        per_day.add(station, [report.by_day_station.get((day, station), 0) for day in days])
    yields = pygal.Bar(title="Yield per station (%)", range=(0, 100), **options)
    yields.x_labels = sorted(report.by_station)
    yields.add("yield %", [report.yield_percent(report.by_station[s])
                           for s in sorted(report.by_station)])
    refusals = pygal.HorizontalBar(title="Refusals by code", **options)
    for code in sorted(report.refusals):
        refusals.add(code, report.refusals[code])
    return {"per_day": _inline(per_day), "yield": _inline(yields),
            "refusals": _inline(refusals)}


def render_html(report: ProductionReport, provenance: Provenance, *, title: str) -> str:
    """Render one self-contained HTML page: verdict, key, head, span, tables and charts."""
    env = Environment(loader=PackageLoader("provisioner.audit", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    template = env.get_template("report.html.j2")
    return template.render(
        title=title, provenance=provenance, report=report, charts=_charts(report),
        sections=_sections(report), devices=report.devices, device_fields=DEVICE_FIELDS,
    )
