"""Production report: exact counts from a scripted entry list, text layout, HTML escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioner.audit.chain import AuditEntry, AuditEvent, build_entry
from provisioner.audit.report import Filter, build_report
from provisioner.audit.report_render import Provenance, render_csv, render_html, render_text
from provisioner.crypto.signing import SigningKey

HOSTILE = '<script>alert("x")</script>&'
E = AuditEvent
SCRIPT: list[tuple[int, str, dict[str, object]]] = [
    (0, E.order_created, {"order_id": "O-1", "product": HOSTILE, "quantity": 5}),
    (0, E.order_created, {"order_id": "O-2", "product": "Widget", "quantity": 3}),
    (0, E.grant_issued, {"order_id": "O-1", "station_id": "ST-1", "device_id": 1}),
    (0, E.device_programmed, {"order_id": "O-1", "station_id": "ST-1", "device_id": 1}),
    (0, E.grant_issued, {"order_id": "O-1", "station_id": "ST-2", "device_id": 2}),
    (0, E.device_failed, {"order_id": "O-1", "station_id": "ST-2", "device_id": 2}),
    (0, E.grant_refused, {"order_id": "O-1", "station_id": "ST-2", "code": "duplicate_chip"}),
    (1, E.grant_issued, {"order_id": "O-2", "station_id": "ST-1", "device_id": 3}),
    (1, E.device_suspect, {"order_id": "O-2", "station_id": "ST-1", "device_id": 3}),
    (1, E.alarm_digest_mismatch, {"order_id": "O-2", "device_id": 3, "detail": "digest <b>"}),
    (1, E.grant_issued, {"order_id": "O-2", "station_id": "ST-1", "device_id": 5}),
    (1, E.device_quarantined, {"order_id": "O-2", "station_id": "ST-1", "device_id": 5}),
    (1, E.grant_refused, {"order_id": "O-2", "station_id": "ST-1", "code": "quota_exhausted"}),
    (1, E.grant_refused, {"order_id": "O-2", "station_id": "ST-1", "code": "quota_exhausted"}),
    (1, E.update_refused, {"device_id": 9, "code": "bad_mac"}),
    (1, E.alarm_clone, {"device_id": 4}),
    (1, E.operator_signed_in, {"operator_id": "op"}),
]
PROVENANCE = Provenance("test", "verified", "00112233aabbccdd", len(SCRIPT), "f" * 64)


@pytest.fixture(scope="module")
def entries() -> list[AuditEntry]:
    signer = SigningKey.generate()
    start = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    out: list[AuditEntry] = []
    for index, (day, event, data) in enumerate(SCRIPT):
        out.append(build_entry(prev=out[-1] if out else None,
                               time=start + timedelta(days=day, minutes=index), actor="site",
                               event=event, data=data, signer=signer))
    return out


def test_counts_are_exact(entries: list[AuditEntry]) -> None:
    report = build_report(entries)
    assert report.entry_count == len(SCRIPT)
    assert {k: dict(v) for k, v in report.by_order.items()} == {
        "O-1": {"granted": 2, "programmed": 1, "failed": 1},
        "O-2": {"granted": 2, "suspect": 1, "quarantined": 1},
    }
    assert {k: dict(v) for k, v in report.by_station.items()} == {
        "ST-1": {"granted": 3, "programmed": 1, "suspect": 1, "quarantined": 1},
        "ST-2": {"granted": 1, "failed": 1},
    }
    assert {k: dict(v) for k, v in report.by_day.items()} == {
        "2026-11-22": {"granted": 2, "programmed": 1, "failed": 1},
        "2026-11-23": {"granted": 2, "suspect": 1, "quarantined": 1},
    }
    assert dict(report.refusals) == {"duplicate_chip": 1, "quota_exhausted": 2, "bad_mac": 1}
    assert [(a.seq, a.event) for a in report.alarms] == [(10, "alarm_digest_mismatch"),
                                                         (16, "alarm_clone")]
    assert report.alarms[0].subject == "order_id=O-2, device_id=3"
    assert {k: (v.product, v.authorised) for k, v in report.orders.items()} == {
        "O-1": (HOSTILE, 5), "O-2": ("Widget", 3)}
    assert (report.remaining("O-1"), report.remaining("O-2")) == (4, 2)
    assert [d.device_id for d in report.devices] == [1, 3]
    assert report.final_status == {1: "programmed", 2: "failed", 3: "suspect", 5: "quarantined"}


def test_filter_by_order_and_day(entries: list[AuditEntry]) -> None:
    report = build_report(entries, Filter(order_id="O-2", from_day="2026-11-23"))
    assert set(report.by_order) == {"O-2"}
    assert set(report.orders) == {"O-2"}
    assert dict(report.refusals) == {"quota_exhausted": 2}
    assert build_report(entries, Filter(to_day="2026-11-22")).totals["granted"] == 2


def test_text_table_rows(entries: list[AuditEntry]) -> None:
    lines = render_text(build_report(entries), PROVENANCE).splitlines()
    header = next(line for line in lines if line.startswith("station_id"))
    assert header.split() == ["station_id", "produced", "granted", "programmed", "suspect",
                              "failed", "quarantined", "released", "yield"]
    assert next(line for line in lines if line.startswith("ST-1")).split() == [
        "ST-1", "2", "3", "1", "1", "0", "1", "0", "33%"]
    assert next(line for line in lines if line.startswith("quota_exhausted")).split() == [
        "quota_exhausted", "2"]
    assert next(line for line in lines if line.startswith("O-2")).split() == [
        "O-2", "Widget", "3", "1", "0", "1", "0", "1", "0", "0", "2"]
    assert "key 00112233aabbccdd" in lines[1]


def test_csv_lists_the_produced_boards(entries: list[AuditEntry]) -> None:
    rows = render_csv(build_report(entries)).splitlines()
    assert rows[0].split(",")[:4] == ["device_id", "chip_uid", "order_id", "station_id"]
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "3"]


def test_html_is_self_contained_and_escaped(entries: list[AuditEntry]) -> None:
    page = render_html(build_report(entries), PROVENANCE, title="Site <A&B>")
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in page
    assert "digest &lt;b&gt;" in page
    assert "<title>Site &lt;A&amp;B&gt;</title>" in page
    assert page.count("<svg") == 3
    for external in ("src=", "href=", "<link", "url(http", "@import"):
        assert external not in page


def test_empty_report_renders() -> None:
    report = build_report([])
    assert "(none)" in render_text(report, PROVENANCE)
    assert "<svg" in render_html(report, PROVENANCE, title="empty")


def test_text_keeps_control_sequences_out() -> None:
    signer = SigningKey.generate()
    start = datetime(2026, 11, 22, tzinfo=UTC)
    first = build_entry(prev=None, time=start, actor="site", event=E.order_created,
                        data={"order_id": "O-9", "product": "\x1b[2Jboom"}, signer=signer)
    second = build_entry(prev=first, time=start, actor="site", event=E.grant_issued,
                         data={"order_id": "O-9", "station_id": "ST-1"}, signer=signer)
    text = render_text(build_report([first, second]), PROVENANCE)
    assert "\x1b" not in text
    assert "?[2Jboom" in text
