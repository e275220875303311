"""The Textual station app: composes the screens and routes messages to the runner's workers."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from provisioner import wire
from provisioner.errors import ProvisionerError, SiteUnreachable
from provisioner.station.events import BoardFinished, Listener, ignore_events
from provisioner.station.headless import MAX_PARALLEL_BOARDS
from provisioner.station.presence import Connector
from provisioner.station.ui import board_view, wording
from provisioner.station.ui.board_view import BoardView, Verdict
from provisioner.station.ui.listener import BoardListener
from provisioner.station.ui.messages import (
    BoardChanged,
    BoardCrashed,
    BoardDone,
    BoardProgressed,
    BoardWaiting,
    OrderChosen,
    OrdersLoaded,
    OrdersRequested,
    QuitRequested,
    RetryRequested,
    SignedIn,
    SignInFailed,
    SignInSubmitted,
    SiteTrouble,
    StartRequested,
)
from provisioner.station.ui.screens.bench import BenchScreen
from provisioner.station.ui.screens.orders import OrdersScreen
from provisioner.station.ui.screens.signin import SignInScreen
from provisioner.station.ui.widgets.banner import Alert
from provisioner.station.ui.widgets.event_log import LogEntry, LogLevel
from provisioner.station.ui.widgets.order_table import order_status

BOARD_GROUP = "boards"


class Runner(Protocol):
    """The part of ``StationRunner`` the UI calls (all of it may block: call from workers)."""

    def sign_in(self, operator_id: str, pin: str) -> None: ...

    def list_orders(self) -> list[wire.OrderSummary]: ...

    def await_next_board(self, order_id: str, location: str, connect: Connector,
                         previous_chip_uid: str | None, listener: Listener,
                         stop: threading.Event, *, retry_same: bool = False) -> bool: ...

    def provision_board(self, order_id: str, location: str, connect: Connector,
                        listener: Listener) -> BoardFinished: ...

    def recover(self, attached: Mapping[str, Connector], listener: Listener
                ) -> list[BoardFinished]: ...

    def settle_pending(self) -> int: ...


class StationApp(App[int]):
    """Sign-in → order picker → bench; one thread worker per board (at most 8 at once).

    ``boards`` maps each location (port or probe) to its connector; the runner reaches a
    board with the order's profile. Enter on a location that already finished a board waits
    for the operator to swap in the next one ("insert next board"); r retries what is there.
    ``signed_in_as`` names the operator when the runner is already signed in (the sign-in
    screen is skipped). ``clock`` stamps log lines; ``cursor_blink`` is off for snapshots.
    The app's return code is 0 when the last attempt at every location passed.
    """

    CSS_PATH = "station.tcss"
    TITLE = "Provisioning station"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit")]

    def __init__(self, runner: Runner, boards: Mapping[str, Connector], *,
                 signed_in_as: str | None = None, clock: Callable[[], datetime] = datetime.now,
                 cursor_blink: bool = True) -> None:
        super().__init__()
        self._signed_in_as = signed_in_as
        self._runner = runner
        self._boards = dict(boards)
        self._clock = clock
        self._cursor_blink = cursor_blink
        self._views = {location: BoardView(location) for location in self._boards}
        self._busy_locations: set[str] = set()
        self._board_workers: dict[Worker[None], str] = {}
        self._waits: dict[str, threading.Event] = {}  # locations waiting for the next board
        self._backlog: list[LogEntry] = []
        self._order: wire.OrderSummary | None = None
        self._order_ended: str | None = None
        self._outcomes: dict[str, str] = {}  # attempt_id -> "pass" | "fail" | "pending"
        self._site_down = False
        self._quitting = False
        self._orders_requested = 0
        self._orders_shown = 0

    # --- screens -------------------------------------------------------------------------

    def on_mount(self) -> None:
        """Start at the sign-in screen (or load the orders for an operator signed in)."""
        self.push_screen(SignInScreen(cursor_blink=self._cursor_blink))
        if self._signed_in_as is not None:
            self._sign_in(self._signed_in_as, None)

    @property
    def bench(self) -> BenchScreen | None:
        """The bench screen when it is showing."""
        return self.screen if isinstance(self.screen, BenchScreen) else None

    def on_sign_in_submitted(self, message: SignInSubmitted) -> None:
        """Ask the site in a worker."""
        self._sign_in(message.operator_id, message.pin)

    def on_sign_in_failed(self, message: SignInFailed) -> None:
        """Tell the operator why."""
        if isinstance(self.screen, SignInScreen):
            self.screen.error = message.reason

    def on_signed_in(self, message: SignedIn) -> None:
        """Show the orders; note attempts settled from the last session."""
        self.sub_title = f"operator {message.operator_id}"
        for result in message.recovered:
            verdict = "PASS" if result.passed else "FAIL"
            self._note(f"recovered {result.location}: {verdict} {result.state} "
                      f"{result.code or ''}".rstrip(), "pass" if result.passed else "warning")
        self.switch_screen(OrdersScreen(message.orders))

    def on_order_chosen(self, message: OrderChosen) -> None:
        """Open the bench for the chosen order."""
        self._order = message.order
        self._order_ended = _ended(message.order)
        self._views = {location: BoardView(location) for location in self._boards}
        self._note(f"producing order {message.order.order_id} "
                  f"({message.order.remaining} remaining)")
        self.push_screen(BenchScreen(message.order, self._views.values(), self._backlog,
                                     self._tally_line()))
        self._refresh_banner()

    def on_orders_requested(self, message: OrdersRequested) -> None:
        """Refresh the order counts; from the bench, go back to the picker when idle."""
        if self.bench is not None:
            running = self._stop_waiting()
            if running:
                self._note(f"wait for {running} board(s) to finish", "warning")
                return
            self.pop_screen()
        self._load_orders()

    def on_orders_loaded(self, message: OrdersLoaded) -> None:
        """Route fresh counts to the picker and the bench (an answer older than shown is stale)."""
        if message.request < self._orders_shown:
            return
        self._orders_shown = message.request
        self._site_down = False
        if isinstance(self.screen, OrdersScreen):
            self.screen.show_orders(message.orders)
        current = next((o for o in message.orders if self._order is not None
                        and o.order_id == self._order.order_id), None)
        if current is not None:
            self._order = current
            if self._order_ended is None:
                self._order_ended = _ended(current)
            if self.bench is not None:
                self.bench.show_order(current)
        self._refresh_banner()

    def on_site_trouble(self, message: SiteTrouble) -> None:
        """Show a site problem on the current screen."""
        self._site_down = self._site_down or message.unreachable
        if isinstance(self.screen, SignInScreen):
            self.screen.error = message.reason
        elif isinstance(self.screen, OrdersScreen):
            self.screen.alert(Alert("error", message.reason))
        else:
            self._note(message.reason, "warning")
            self._refresh_banner()

    # --- boards --------------------------------------------------------------------------

    def on_start_requested(self, message: StartRequested) -> None:
        """Start every ready board, up to the parallel limit."""
        if self._quitting or self._order is None:
            return
        ready = [loc for loc, view in self._views.items()
                 if view.is_startable and loc not in self._busy_locations]
        if not ready:
            self._note("every board is busy or waiting for a swap", "warning")
            return
        for location in ready[: MAX_PARALLEL_BOARDS - len(self._busy_locations)]:
            self._start(location, swap=self._views[location].verdict is not Verdict.idle)

    def on_retry_requested(self, message: RetryRequested) -> None:
        """Resend pending reports; start the highlighted failed board, else the first one."""
        if self._quitting or self._order is None:
            return
        pending = sum(outcome == "pending" for outcome in self._outcomes.values())
        if pending:
            self._note(f"sending {pending} pending report(s) to the site")
            self._settle_reports()
        failed = [loc for loc, view in self._views.items()
                  if view.verdict is Verdict.failed and loc not in self._busy_locations]
        if not failed:
            if not pending:
                self._note("no failed board to retry", "warning")
            return
        if len(self._busy_locations) >= MAX_PARALLEL_BOARDS:
            self._note(f"{MAX_PARALLEL_BOARDS} boards already running", "warning")
            return
        self._start(message.location if message.location in failed else failed[0])

    def _start(self, location: str, *, swap: bool = False) -> None:
        """Run the board at ``location``; with ``swap``, first wait for a different chip."""
        assert self._order is not None
        previous = self._views[location]
        self._busy_locations.add(location)
        self._show(board_view.starting(self._views[location]))
        stop = threading.Event() if swap else None
        if stop is not None:
            self._waits[location] = stop
        worker = self._provision(self._order.order_id, location, previous.chip_uid, stop,
                                 previous.verdict is Verdict.failed)
        self._board_workers[worker] = location

    def _stop_waiting(self) -> int:
        """Stop every location waiting for a swap; return how many boards are still running."""
        for stop in self._waits.values():
            stop.set()
        return len(self._busy_locations - set(self._waits))

    def on_board_waiting(self, message: BoardWaiting) -> None:
        """A location waits for the operator to swap in the next board."""
        event = message.event
        self._show(board_view.waiting(self._views[event.location], event.message))
        self._note(f"{event.location}: {event.message}", "warning")

    def on_board_changed(self, message: BoardChanged) -> None:
        """A board moved to a new state."""
        update = message.update
        self._show(board_view.fold(self._views[update.location], update))
        self._note(f"{update.location}: {update.message}")

    def on_board_progressed(self, message: BoardProgressed) -> None:
        """Move a board's progress bar."""
        progress = message.progress
        self._show(board_view.fold(self._views[progress.location], progress))

    def on_board_done(self, message: BoardDone) -> None:
        """Show PASS/FAIL/report pending, raise the banner it calls for, refresh the counts."""
        result = message.result
        view = self._views[result.location]
        if view.attempt_id in (None, result.attempt_id):  # not a settle of an earlier board
            self._show(board_view.fold(view, result))
        settled = self._outcomes.get(result.attempt_id) == "pending"
        if result.passed:
            self._outcomes[result.attempt_id] = "pass"
            self._site_down = False
            how = ": its pending report was taken" if settled else ""
            self._note(f"PASS {result.location}: device ID {result.device_id}{how}", "pass")
        elif result.is_programmed_pending:
            self._outcomes[result.attempt_id] = "pending"
            self._site_down = True
            self._note(f"{result.location}: device ID {result.device_id} programmed, report "
                       "pending: keep the board, it is reported when the site answers",
                       "warning")
        else:
            self._outcomes[result.attempt_id] = "fail"
            code = result.code or result.state.value
            why = result.detail if result.detail.startswith(code) else f"{code}: {result.detail}"
            self._note(f"FAIL {result.location}: {why}", "fail")
            if result.code == wording.SITE_UNREACHABLE_CODE:
                self._site_down = True
            elif result.code in wording.ORDER_ENDED_CODES:
                self._order_ended = result.code
        if self.bench is not None:
            self.bench.show_tally(self._tally_line())
        self._refresh_banner()
        self._load_orders()

    def _tally_line(self) -> str:
        counts = Counter(self._outcomes.values())
        return wording.tally_line(counts["pass"], counts["fail"], counts["pending"])

    def on_board_crashed(self, message: BoardCrashed) -> None:
        """A worker failed before the runner took the board."""
        self._show(board_view.crashed(self._views[message.location], message.reason))
        self._note(f"FAIL {message.location}: {message.reason}", "fail")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Forget finished board workers; quit when the last one ends while quitting."""
        worker = event.worker
        if worker.group != BOARD_GROUP:
            if event.state is WorkerState.ERROR:  # a site call failed unexpectedly
                self.on_site_trouble(SiteTrouble(f"station error: {worker.error}", False))
            return
        if not worker.is_finished:
            return
        location = self._board_workers.pop(worker, None)
        if location is None:
            return
        self._busy_locations.discard(location)
        self._waits.pop(location, None)
        if event.state is WorkerState.ERROR:
            self.on_board_crashed(BoardCrashed(location, f"station error: {worker.error}"))
        if self._quitting and not self._busy_locations:
            self.exit(self.exit_code, return_code=self.exit_code)
        self._refresh_banner()

    # --- quitting ------------------------------------------------------------------------

    def on_quit_requested(self, message: QuitRequested | None = None) -> None:
        """Quit now, or after the boards in flight finish (locations waiting stop at once)."""
        running = self._stop_waiting()
        if not self._busy_locations:
            self.exit(self.exit_code, return_code=self.exit_code)
            return
        self._quitting = True
        if running:
            self._note(f"quitting after {running} board(s) finish", "warning")
        self._refresh_banner()

    async def action_quit(self) -> None:
        """Ctrl+Q quits safely too."""
        self.on_quit_requested()

    @property
    def exit_code(self) -> int:
        """0 when the last attempt at every location passed (or none ran), else 1."""
        return int(bool(self.exit_reason))

    @property
    def exit_reason(self) -> str:
        """Why the exit code is 1, in words ("" when it is 0)."""
        failed = [loc for loc, view in self._views.items() if view.verdict is Verdict.failed]
        pending = [loc for loc, view in self._views.items() if view.verdict is Verdict.pending]
        reasons = []
        if failed:
            reasons.append(f"the last board failed at {', '.join(failed)}")
        if pending:
            reasons.append(f"the report of the board at {', '.join(pending)} is pending "
                           "(the next start sends it)")
        return "; ".join(reasons)

    # --- workers (threads: the runner blocks) --------------------------------------------

    # an explicit description keeps the PIN out of the worker's repr (Textual lists the args)
    @work(thread=True, group="site", exit_on_error=False, description="sign in")
    def _sign_in(self, operator_id: str, pin: str | None) -> None:
        """Sign in (``pin`` None: already signed in), settle open attempts, load the orders."""
        try:
            if pin is not None:
                self._runner.sign_in(operator_id, pin)
        except ProvisionerError as exc:
            self.post_message(SignInFailed(wording.sign_in_error(exc)))
            return
        try:
            recovered = self._runner.recover(self._boards, ignore_events)
            orders = self._runner.list_orders()
        except ProvisionerError as exc:
            self.post_message(SignInFailed(wording.site_trouble(exc)))
            return
        self.post_message(SignedIn(operator_id, orders, recovered))

    @work(thread=True, group="site", exit_on_error=False)
    def _settle_reports(self) -> None:
        self._runner.settle_pending()  # settled boards arrive as BoardDone messages

    def _load_orders(self) -> None:
        self._orders_requested += 1
        self._fetch_orders(self._orders_requested)

    @work(thread=True, group="site", exit_on_error=False)
    def _fetch_orders(self, request: int) -> None:
        try:
            orders = self._runner.list_orders()
        except ProvisionerError as exc:
            self.post_message(SiteTrouble(wording.site_trouble(exc),
                                          unreachable=isinstance(exc, SiteUnreachable)))
            return
        self.post_message(OrdersLoaded(orders, request))

    @work(thread=True, group=BOARD_GROUP, exit_on_error=False)
    def _provision(self, order_id: str, location: str, previous_chip_uid: str | None,
                   wait: threading.Event | None, retry_same: bool) -> None:
        connect = self._boards[location]
        listener = BoardListener(self)
        if wait is not None and not self._runner.await_next_board(
                order_id, location, connect, previous_chip_uid, listener, wait,
                retry_same=retry_same):
            return
        self._runner.provision_board(order_id, location, connect, listener)

    # --- plumbing ------------------------------------------------------------------------

    def _show(self, view: BoardView) -> None:
        self._views[view.location] = view
        if self.bench is not None:
            self.bench.show_board(view)

    def _note(self, text: str, level: LogLevel = "info") -> None:
        entry = LogEntry(self._clock(), text, level)
        self._backlog.append(entry)
        if self.bench is not None:
            self.bench.log_entry(entry)

    def _refresh_banner(self) -> None:
        if self.bench is None:
            return
        alert: Alert | None = None
        if self._quitting and self._busy_locations:
            alert = wording.finishing_alert(len(self._busy_locations))
        elif self._site_down:
            pending = sum(outcome == "pending" for outcome in self._outcomes.values())
            alert = wording.site_unreachable_alert(pending)
        elif (self._order_ended is not None and self._order is not None
              and not self._busy_locations - set(self._waits)):
            alert = wording.exhausted_alert(self._order.order_id, self._order_ended)
        elif not self._boards:
            alert = Alert("warning", "No board attached: start the station with --port/--probe.")
        self.bench.alert(alert)


def run_ui(runner: Runner, boards: Mapping[str, Connector], *,
           signed_in_as: str | None = None) -> int:
    """Run the operator UI until the operator quits; return the app's exit code.

    ``signed_in_as``: the runner is already signed in as this operator (e.g. the demo), so
    the UI opens at the order picker.
    """
    app = StationApp(runner, boards, signed_in_as=signed_in_as)
    app.run()
    code = app.return_code or 0
    if code and app.exit_reason:
        print(f"station: exit status {code}: {app.exit_reason}", file=sys.stderr)
    return code


def _ended(order: wire.OrderSummary) -> str | None:
    """The code of an order no board can be produced for any more (None: still open)."""
    status = order_status(order)
    if status == "closed":
        return "order_closed"
    return "quota_exhausted" if status == "exhausted" else None
