"""The station UI's own pieces: row folding, progress throttling, message coalescing, wording."""

from __future__ import annotations

from typing import cast

import pytest
from textual.message import Message

from provisioner import wire
from provisioner.errors import AuthenticationFailed, OperatorLocked, SiteUnreachable
from provisioner.flash.backend import FlashBackend, Operation, ProgressEvent
from provisioner.station.engine import AttemptState
from provisioner.station.events import BoardFinished, BoardProgress, BoardUpdate
from provisioner.station.ui import app as ui_app
from provisioner.station.ui import board_view, wording
from provisioner.station.ui.board_view import BoardView, Verdict
from provisioner.station.ui.listener import BoardListener
from provisioner.station.ui.messages import BoardChanged, BoardDone, BoardProgressed
from provisioner.station.ui.widgets.board_table import render_row
from provisioner.station.ui.widgets.order_table import order_status


class Collector:
    """Stands in for the app as the target of ``post_message`` (records what is posted)."""

    def __init__(self) -> None:
        self.posted: list[Message] = []

    def post_message(self, message: Message) -> bool:
        self.posted.append(message)
        return True


def progress(location: str, operation: Operation, done: int, total: int = 1000) -> BoardProgress:
    return BoardProgress(location, ProgressEvent(operation, done, total))


def test_rows_fold_updates_progress_and_the_verdict() -> None:
    view = board_view.starting(BoardView("/dev/ttyUSB0"))
    view = board_view.fold(view, BoardUpdate("/dev/ttyUSB0", "a1", AttemptState.granted,
                                             "0011223344556677", 42, 7, "granted"))
    view = board_view.fold(view, progress("/dev/ttyUSB0", Operation.program, 250))
    assert (view.verdict, view.state, view.device_id, view.percent) == (
        Verdict.running, "granted", 42, 25)
    assert [cell.plain for cell in render_row(view)][3:] == ["program…", "█░░░░░  25%", "…"]
    failed = board_view.fold(view, BoardFinished("/dev/ttyUSB0", "a1", AttemptState.failed,
                                                 False, "verify_mismatch", "at 0x08000400",
                                                 None, None))
    assert (failed.verdict, failed.code, failed.device_id, failed.is_startable) == (
        Verdict.failed, "verify_mismatch", 42, True)  # Enter: swap in the next board
    assert [cell.plain for cell in render_row(failed)] == [
        "/dev/ttyUSB0", "…344556677", "42", "verify_mismatch", "", "FAIL"]


def test_listener_posts_progress_once_per_percent_and_every_state() -> None:
    target = Collector()
    listener = BoardListener(target)  # type: ignore[arg-type]
    listener(BoardUpdate("p", "a", AttemptState.flashing, None, None, None, "flashing"))
    for done in range(0, 1001, 2):  # 501 events, 101 distinct percents
        listener(progress("p", Operation.verify, done))
    listener(BoardFinished("p", "a", AttemptState.reported, True, None, "programmed", None, 1))
    kinds = [type(message) for message in target.posted]
    assert kinds == [BoardChanged] + [BoardProgressed] * 101 + [BoardDone]


def test_a_newer_progress_message_of_the_same_board_replaces_a_queued_one() -> None:
    older = BoardProgressed(progress("p", Operation.program, 10))
    assert older.can_replace(BoardProgressed(progress("p", Operation.verify, 0)))
    assert not older.can_replace(BoardProgressed(progress("q", Operation.program, 20)))
    assert not older.can_replace(BoardDone(BoardFinished("p", "a", AttemptState.reported, True,
                                                         None, "", None, None)))


def test_sign_in_errors_are_in_operator_words() -> None:
    assert wording.sign_in_error(AuthenticationFailed("unknown operator or wrong PIN")) == (
        "Wrong operator ID or PIN. Try again.")
    locked = OperatorLocked("operator op-1 locked out for 15 minutes after 5 failures")
    assert wording.sign_in_error(locked).startswith("Locked for 15 minutes")
    assert wording.sign_in_error(OperatorLocked("operator op-1 is locked out")).startswith(
        "Locked for now")
    assert wording.sign_in_error(SiteUnreachable("https://site", "refused")).startswith(
        "Site unreachable")



def test_the_pin_stays_out_of_the_sign_in_message_repr() -> None:
    from provisioner.station.ui.messages import SignInSubmitted

    message = SignInSubmitted("op-1", "731942")
    assert message.pin == "731942"
    assert "731942" not in repr(message)


def _order(produced: int, reserved: int, status: str = "open") -> wire.OrderSummary:
    return wire.OrderSummary(order_id="o-1", product="p", profile="stm32f103c8",
                             profile_sha256="ab" * 32, authorised_quantity=2, produced=produced,
                             reserved=reserved, remaining=2 - produced - reserved,
                             status=wire.OrderStatus(status))


def test_an_order_is_exhausted_only_once_its_last_unit_is_produced() -> None:
    assert order_status(_order(0, 0)) == "open"
    assert order_status(_order(1, 1)) == "all busy"  # the last unit is being programmed
    assert order_status(_order(2, 0)) == "exhausted"
    assert order_status(_order(0, 0, "closed")) == "closed"


def test_quitting_with_a_failed_board_says_why_on_stderr(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def run(self: ui_app.StationApp) -> None:  # the operator's session, in short
        self._views["/dev/ttyUSB1"] = BoardView("/dev/ttyUSB1", verdict=Verdict.failed)
        self._return_code = self.exit_code

    monkeypatch.setattr(ui_app.StationApp, "run", run)
    code = ui_app.run_ui(cast(ui_app.Runner, object()),
                         {"/dev/ttyUSB0": _unused, "/dev/ttyUSB1": _unused})
    assert code == 1
    assert capsys.readouterr().err == (
        "station: exit status 1: the last board failed at /dev/ttyUSB1\n")


def _unused(profile: object) -> FlashBackend:
    raise AssertionError("not reached")
