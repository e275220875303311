"""`site report`, `audit report`, the CSV/JSON device lists and `site reconcile` against the
ground truth of a scripted production over the real station flow."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from dom_fixtures import parse, render
from report_fixtures import OPERATOR_2, STATIONS, Production, production
from station_fixtures import profile

from provisioner.audit.commands import audit_group
from provisioner.audit.verify import read_export
from provisioner.site.db import repo

OUTCOME_COLUMNS = ("granted", "programmed", "suspect", "failed", "quarantined", "released")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    with production(tmp_path_factory.mktemp("production")) as result:
        yield result


def section(output: str, title: str) -> dict[str, list[str]]:
    """Rows of one fixed-width section of the report, keyed by their first cell."""
    lines = output.splitlines()
    start = lines.index(title)
    rows: dict[str, list[str]] = {}
    if lines[start + 1] == "(none)":
        return rows
    for line in lines[start + 3:]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


def expected_group(run: Production, **where: str) -> list[str]:
    truth = run.truth
    counts = [truth.count(name, **where) for name in OUTCOME_COLUMNS]  # type: ignore[arg-type]
    produced = counts[1] + counts[2]
    closed = sum(counts[1:])
    yield_pct = round(100 * counts[1] / closed) if closed else 0
    return [str(produced), *(str(c) for c in counts), f"{yield_pct}%"]


def expected_order(run: Production, order_id: str) -> list[str]:
    truth = run.truth
    counts = {name: truth.count(name, order=order_id) for name in OUTCOME_COLUMNS}
    produced = counts["programmed"] + counts["suspect"]
    reserved = counts["granted"] - sum(counts[n] for n in OUTCOME_COLUMNS[1:])
    authorised = run.orders[order_id]
    return [str(authorised), str(produced), *(str(counts[n]) for n in OUTCOME_COLUMNS[1:]),
            str(reserved), str(authorised - produced - reserved)]


def assert_report_matches(run: Production, output: str) -> None:
    orders = section(output, "By order")
    assert set(orders) == set(run.orders)
    for order_id in run.orders:
        assert orders[order_id][1:] == expected_order(run, order_id), order_id
    stations = section(output, "By station")
    assert set(stations) == set(STATIONS)
    for station_id in STATIONS:
        assert stations[station_id] == expected_group(run, station=station_id), station_id
    operators = section(output, "By operator")
    assert set(operators) == {run.site.operator_id, OPERATOR_2}
    for operator_id in operators:
        assert operators[operator_id] == expected_group(run, operator=operator_id), operator_id
    days = section(output, "By day (UTC)")
    assert len(days) == 1
    assert next(iter(days.values())) == expected_group(run)
    refusals = {code: int(cells[0]) for code, cells in section(output, "Refusals by code").items()}
    assert refusals == run.truth.refusals
    alarm_rows = section(output, "Alarms")
    events = [cells[1] for cells in alarm_rows.values()]
    assert {e: events.count(e) for e in set(events)} == run.truth.alarms


def assert_devices_match(run: Production, rows: list[dict[str, str]]) -> None:
    level = profile().readout_protection.level
    assert {int(row["device_id"]): (row["order_id"], row["station_id"], row["operator_id"],
                                    row["status"]) for row in rows} == run.truth.produced
    assert len(rows) == len(run.truth.produced)
    for row in rows:
        assert (row["verified"], row["protection_level"]) in (("True", str(level)),
                                                              ("true", level))
        assert len(row["chip_uid"]) == 24
        expected_digest = "e" * 64 if row["status"] == "suspect" else row["image_sha256"]
        assert row["image_sha256"] == expected_digest != "(unknown)"


def test_site_report_equals_the_ground_truth(run: Production, tmp_path: Path) -> None:
    paths = {kind: tmp_path / f"devices.{kind}" for kind in ("csv", "json", "html")}
    output = run.site_cli("report", "--verify", "--csv", str(paths["csv"]),
                          "--json", str(paths["json"]), "--html", str(paths["html"]))
    assert "chain, checkpoints and signed head verified" in output
    assert_report_matches(run, output)
    assert "alarm_report_disagreement" not in output
    assert_devices_match(run, list(csv.DictReader(io.StringIO(paths["csv"].read_text()))))
    devices = json.loads(paths["json"].read_text())
    assert_devices_match(run, [{k: str(v) for k, v in d.items()} for d in devices])


def test_site_report_filters_by_order(run: Production) -> None:
    order_b = next(order for order, quantity in run.orders.items() if quantity == 1)
    output = run.site_cli("report", "--order", order_b)
    assert set(section(output, "By order")) == {order_b}
    assert section(output, "By station") == {"ST-A": ["1", "1", "1", "0", "0", "0", "0", "100%"]}
    assert {c: int(v[0]) for c, v in section(output, "Refusals by code").items()} == {
        "quota_exhausted": 1, "station_not_allowed": 1}


def test_site_report_filters_by_day(run: Production) -> None:
    today = run.site.server.context.clock().strftime("%Y-%m-%d")
    same = run.site_cli("report", "--from", today, "--to", today)
    assert section(same, "By station") == {s: expected_group(run, station=s) for s in STATIONS}
    before = run.site_cli("report", "--from", "2000-01-01", "--to", "2000-01-02")
    assert section(before, "By station") == {}
    orders = section(before, "By order")  # headers stay: what was authorised
    assert {o: cells[1] for o, cells in orders.items()} == {
        o: str(q) for o, q in run.orders.items()}
    assert all(cells[2:] == ["0"] * 7 + [cells[1]] for cells in orders.values())


def test_audit_report_of_an_export_equals_the_ground_truth(run: Production,
                                                           tmp_path: Path) -> None:
    export = tmp_path / "audit.tar"
    run.site_cli("audit", "export", str(export))
    key_id = run.site.server.context.signer.key_id
    csv_path = tmp_path / "devices.csv"
    result = CliRunner().invoke(audit_group, ["report", str(export), "--key-id", key_id,
                                              "--csv", str(csv_path)])
    assert result.exit_code == 0, result.output
    assert f"key {key_id}" in result.output
    assert_report_matches(run, result.output)
    assert_devices_match(run, list(csv.DictReader(io.StringIO(csv_path.read_text()))))
    entries = read_export(export, expected_key_id=key_id)[1]
    completions = [e for e in entries if e.event in ("device_programmed", "device_suspect")]
    assert len(completions) == len(run.truth.produced)
    for entry in completions:
        data = entry.data
        assert data["station_id"] == entry.actor.removeprefix("station:")
        assert run.truth.produced[int(str(data["device_id"]))][1:3] == (
            data["station_id"], data["operator_id"])
        assert isinstance(data["drbg_index"], int)
        assert data["verified"] is True
        assert data["protection_level"] == profile().readout_protection.level
        timings = data["timings_ms"]
        assert isinstance(timings, dict)
        assert timings
        assert all(isinstance(v, int) and v >= 0 for v in timings.values())
    wrong = CliRunner().invoke(audit_group, ["report", str(export), "--key-id", "0" * 16])
    assert wrong.exit_code == 1
    assert "entry seq 1 is not signed by the manufacturer key (bad_signature)" in wrong.output


def test_reconcile_lists_then_releases_the_expired_reservation(run: Production) -> None:
    rows = [line.split() for line in run.reconcile_before.splitlines()[2:]]
    reserved = [row for row in rows if row[5] == "reserved"]
    assert [(row[3], row[4], row[6]) for row in reserved] == [
        ("ST-C", run.site.operator_id, "(expired)")]
    assert [row[3] for row in rows if row[5] == "suspect"] == ["ST-C"]
    assert "released device" in run.reconcile_release
    after = [line.split() for line in run.reconcile_after.splitlines()[2:]]
    assert [row[5] for row in after] == ["suspect"]
    order_a = next(order for order, quantity in run.orders.items() if quantity == 20)
    shown = run.site_cli("order", "show", order_a)
    assert "reserved:     0" in shown
    stations = run.site_cli("station", "list").splitlines()[2:]
    assert all(line.split()[3] != "never" for line in stations)


def test_html_report_renders_in_chromium_with_the_true_numbers(run: Production,
                                                              tmp_path: Path) -> None:
    page_path = tmp_path / "report.html"
    export = tmp_path / "audit.tar"
    run.site_cli("audit", "export", str(export))
    key_id = run.site.server.context.signer.key_id
    result = CliRunner().invoke(audit_group, ["report", str(export), "--key-id", key_id,
                                              "--html", str(page_path)])
    assert result.exit_code == 0, result.output
    screenshot = tmp_path / "report.png"
    page = parse(render(page_path, screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # text, tables and three charts, not blank
    assert page.texts["key-id"] == key_id
    assert page.texts["verdict"].startswith("verified offline (whole chain")
    head = run.site.server.context
    with head.factory() as session:
        signed = repo.signed_head(session)
    assert page.texts["head"] == f"seq {signed.seq} {signed.hash}"
    truth = run.truth
    per_station = [str(truth.count("programmed", station=s) + truth.count("suspect", station=s))
                   for s in STATIONS]
    assert page.bars["chart-per-day"] == per_station  # one day: one stacked bar per station
    assert page.bars["chart-yield"] == [expected_group(run, station=s)[-1].rstrip("%")
                                        for s in STATIONS]
    assert page.bars["chart-refusals"] == [str(truth.refusals[c]) for c in sorted(truth.refusals)]
    stations = {row[0]: row[1:] for row in page.tables["By station"][1:]}
    assert stations == {s: expected_group(run, station=s) for s in STATIONS}
    operators = {row[0]: row[1:] for row in page.tables["By operator"][1:]}
    assert operators == {o: expected_group(run, operator=o)
                         for o in (run.site.operator_id, OPERATOR_2)}
    devices = page.tables["Devices"]
    assert len(devices) - 1 == len(truth.produced)
    text = page_path.read_text()
    for external in ("<script src", "<link", "href=", "url(http"):
        assert external not in text
