"""One-time enrolment, station → site over mTLS: consumed once, reuse and clones raise alarms."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from station_fixtures import STATION_PASSPHRASE, TEST_SCRYPT_N, served_site

from provisioner.crypto.bundle import EnrolmentBundle
from provisioner.demo import DemoSite, virtual_boards
from provisioner.errors import EnrolmentReused, IndexReused, SiteUnreachable, StationInactive
from provisioner.site import admin, catalogue
from provisioner.site.db import repo
from provisioner.site.db.models import Station
from provisioner.station.commands import (
    ENROL_PASSPHRASE_ENV,
    STATION_PASSPHRASE_ENV,
    station_group,
)
from provisioner.station.enrolment import confirm_at_site, enroll, open_enrolment_bundle
from provisioner.station.events import StationEvent
from provisioner.station.site_client import SiteClient, build_ssl_context
from provisioner.station.unlock import open_station
from provisioner.wire import EnrolmentConfirmation, EnrolmentConfirmed, GrantRequest


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    with served_site(tmp_path_factory.mktemp("enrolment")) as site:
        yield site


def _status(site: DemoSite, station_id: str) -> str:
    with site.server.context.factory() as session:
        station = session.get(Station, station_id)
        assert station is not None
        return station.status


def _events(site: DemoSite, station_id: str) -> list[tuple[str, dict[str, object]]]:
    with site.server.context.factory() as session:
        return [(e.event, dict(e.data)) for e in repo.audit_entries(session)
                if e.data.get("station_id") == station_id]


def _station_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir()) if data_dir.exists() else []


def _add(site: DemoSite, station_id: str) -> tuple[Path, str]:
    enrolment = admin.add_station(site.server.context, site.site_dir, station_id, site.url,
                                  scrypt_n=TEST_SCRYPT_N)
    return enrolment.bundle_path, enrolment.passphrase


def test_a_pending_station_cannot_work_until_it_confirms(site: DemoSite) -> None:
    bundle_path, passphrase = _add(site, "ST-pending")
    bundle = open_enrolment_bundle(bundle_path, passphrase)
    context = build_ssl_context(bundle.ca_cert_pem, bundle.client_cert_pem,
                                bundle.client_key_pem.reveal())
    client = SiteClient(site.url, context)
    try:
        with pytest.raises(StationInactive, match="has not confirmed its one-time enrolment"):
            client.sign_in(site.operator_id, site.pin)
        request = EnrolmentConfirmation(request_id="enrol-retry-0001")
        first = client.confirm_enrolment(request)
        # A retry of the same call (its answer was lost) is answered, not taken for reuse.
        assert client.confirm_enrolment(request) == first
        assert first.status == "active"
        client.sign_in(site.operator_id, site.pin)
    finally:
        client.close()
        bundle.wipe()
    events = [event for event, _ in _events(site, "ST-pending")]
    assert events.count("station_enrolment_confirmed") == 1
    assert not [e for e in events if e.startswith("alarm_")]


def test_a_reused_bundle_is_refused_with_an_alarm(site: DemoSite, tmp_path: Path) -> None:
    bundle_path, passphrase = _add(site, "ST-reuse")
    copy = tmp_path / "copied.bundle"
    shutil.copyfile(bundle_path, copy)  # what a second bench (or a backup) keeps

    config = enroll(bundle_path, passphrase, STATION_PASSPHRASE, tmp_path / "bench-1",
                    scrypt_n=TEST_SCRYPT_N)
    assert config.station_id == "ST-reuse"
    assert not bundle_path.exists(), "the used bundle must be destroyed at the bench"
    assert _status(site, "ST-reuse") == "active"

    with pytest.raises(EnrolmentReused, match="already used"):
        enroll(copy, passphrase, STATION_PASSPHRASE, tmp_path / "bench-2",
               scrypt_n=TEST_SCRYPT_N)
    assert _station_files(tmp_path / "bench-2") == [], "a refused enrolment left files"
    assert copy.exists(), "only a confirmed enrolment consumes the file"
    assert _status(site, "ST-reuse") == "suspended"
    alarms = [data for event, data in _events(site, "ST-reuse")
              if event == "alarm_enrolment_reused"]
    assert len(alarms) == 1
    assert alarms[0]["station_status"] == "suspended"
    # The first bench is stopped too: its identity is known to a second party now.
    first = open_station(tmp_path / "bench-1", STATION_PASSPHRASE)
    try:
        with pytest.raises(StationInactive, match="suspended"):
            first.sign_in(site.operator_id, site.pin)
    finally:
        first.close()


def test_an_enrolment_whose_answer_was_lost_resumes_without_alarm(
    site: DemoSite, tmp_path: Path
) -> None:
    bundle_path, passphrase = _add(site, "ST-lost")
    bench = tmp_path / "bench"

    def answer_lost(bundle: EnrolmentBundle, request_id: str) -> EnrolmentConfirmed:
        confirm_at_site(bundle, request_id)  # the site commits ...
        raise SiteUnreachable(site.url, "connection reset")  # ... and the answer is lost

    with pytest.raises(SiteUnreachable):
        enroll(bundle_path, passphrase, STATION_PASSPHRASE, bench, scrypt_n=TEST_SCRYPT_N,
               confirm=answer_lost)
    assert _station_files(bench) == ["enrolment.pending"], "only the request id may remain"
    assert bundle_path.exists()
    assert _status(site, "ST-lost") == "active"
    enroll(bundle_path, passphrase, STATION_PASSPHRASE, bench, scrypt_n=TEST_SCRYPT_N)
    assert "enrolment.pending" not in _station_files(bench)
    assert _status(site, "ST-lost") == "active"
    events = [event for event, _ in _events(site, "ST-lost")]
    assert events.count("station_enrolment_confirmed") == 1
    assert not [e for e in events if e.startswith("alarm_")]
    runner = open_station(bench, STATION_PASSPHRASE)
    try:
        runner.sign_in(site.operator_id, site.pin)
    finally:
        runner.close()


def test_two_benches_sharing_one_identity_raise_an_alarm(site: DemoSite, tmp_path: Path) -> None:
    bundle_path, passphrase = _add(site, "ST-clone")
    enroll(bundle_path, passphrase, STATION_PASSPHRASE, tmp_path / "bench-1",
           scrypt_n=TEST_SCRYPT_N)
    shutil.copytree(tmp_path / "bench-1", tmp_path / "bench-2")  # the clone
    order_id = site.add_order(5)
    events: list[StationEvent] = []
    first = open_station(tmp_path / "bench-1", STATION_PASSPHRASE)
    second = open_station(tmp_path / "bench-2", STATION_PASSPHRASE)
    try:
        first.sign_in(site.operator_id, site.pin)
        second.sign_in(site.operator_id, site.pin)
        with virtual_boards(2) as (board_a, board_b):
            passed = first.provision_board(order_id, board_a.location, board_a.connect,
                                           events.append)
            cloned = second.provision_board(order_id, board_b.location, board_b.connect,
                                            events.append)
    finally:
        first.close()
        second.close()
    assert passed.passed, passed
    assert not cloned.passed
    assert _status(site, "ST-clone") == "suspended"
    alarms = [data for event, data in _events(site, "ST-clone")
              if event == "alarm_station_cloned"]
    assert len(alarms) == 1
    assert alarms[0]["granted_chip_uid"] == board_a.chip_uid.hex()
    assert alarms[0]["chip_uid"] == board_b.chip_uid.hex()
    order = catalogue.show_order(site.server.context, order_id)
    assert (order.produced, order.reserved) == (1, 0)


def test_the_same_chip_asking_again_at_its_index_is_no_clone(site: DemoSite) -> None:
    # A retry for the chip an index was granted to (new request id) is refused as an ordinary
    # index_reused: only a *different* chip at a granted index means a cloned identity.
    bundle_path, passphrase = _add(site, "ST-retry")
    bundle = open_enrolment_bundle(bundle_path, passphrase)
    context = build_ssl_context(bundle.ca_cert_pem, bundle.client_cert_pem,
                                bundle.client_key_pem.reveal())
    bundle.wipe()
    client = SiteClient(site.url, context)
    order_id = site.add_order(2)
    try:
        client.confirm_enrolment(EnrolmentConfirmation(request_id="enrol-ST-retry"))
        client.sign_in(site.operator_id, site.pin)
        chip = "c0ffee0000000001"
        client.request_grant(order_id, GrantRequest(request_id="grant-one-0001", chip_uid=chip,
                                                    drbg_index=0))
        with pytest.raises(IndexReused):
            client.request_grant(order_id, GrantRequest(request_id="grant-two-0002",
                                                        chip_uid=chip, drbg_index=0))
    finally:
        client.close()
    assert _status(site, "ST-retry") == "active"
    events = [event for event, _ in _events(site, "ST-retry")]
    # an index asked again is refused and alarmed as a reuse, but names no clone
    assert events[-2:] == ["grant_refused", "alarm_index_reused"]
    assert "alarm_station_cloned" not in events


def test_enroll_checks_the_one_time_passphrase_before_asking_a_new_one(
    site: DemoSite, tmp_path: Path
) -> None:
    bundle_path, _ = _add(site, "ST-prompt")
    result = CliRunner().invoke(
        station_group, ["enroll", str(bundle_path), "--data-dir", str(tmp_path / "bench")],
        input="0000-0000-0000-0000-0000-0000\n", env={STATION_PASSPHRASE_ENV: "",
                                                      ENROL_PASSPHRASE_ENV: ""},
    )
    assert result.exit_code == 1
    assert "wrong passphrase" in result.output
    assert "New station passphrase" not in result.output


def test_a_junk_file_is_not_an_enrolment_bundle(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("shopping list\n")
    result = CliRunner().invoke(
        station_group, ["enroll", str(junk), "--data-dir", str(tmp_path / "bench")],
        env={ENROL_PASSPHRASE_ENV: "x", STATION_PASSPHRASE_ENV: "y"},
    )
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {junk}: not an enrolment bundle"
