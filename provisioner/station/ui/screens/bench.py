"""Bench view: one row per attached board, the order's counts, a banner and the event log."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from provisioner import wire
from provisioner.station.ui.board_view import BoardView
from provisioner.station.ui.messages import (
    OrdersRequested,
    QuitRequested,
    RetryRequested,
    StartRequested,
)
from provisioner.station.ui.widgets.banner import Alert, Banner
from provisioner.station.ui.widgets.board_table import BoardTable
from provisioner.station.ui.widgets.event_log import EventLog, LogEntry


def describe_order(order: wire.OrderSummary) -> str:
    """One line about the order being produced."""
    return (f"Order {order.order_id} · {order.product} · "
            f"produced {order.produced} of {order.authorised_quantity} · "
            f"remaining {order.remaining}")


class BenchScreen(Screen[None]):
    """Shows the boards of one order; its keys post requests up to the app.

    The app sets what it shows through ``show_board``, ``show_order``, ``alert`` and
    ``log_entry`` at any time, even before the screen is composed.
    """

    BINDINGS = [
        Binding("enter", "start", "Start boards", priority=True, id="bench.start"),
        Binding("r", "retry", "Retry failed", id="bench.retry"),
        Binding("o", "orders", "Orders", id="bench.orders"),
        Binding("q", "quit_station", "Quit", id="bench.quit"),
    ]

    def __init__(self, order: wire.OrderSummary, views: Iterable[BoardView],
                 backlog: Iterable[LogEntry] = (), tally: str = "") -> None:
        super().__init__(id="bench")
        self.order = order
        self._views = list(views)
        self._backlog = list(backlog)
        self._alert: Alert | None = None
        self._tally = tally

    def compose(self) -> ComposeResult:
        """Lay out banner, order line, board table and log."""
        yield Header()
        banner = Banner(id="banner")
        banner.alert = self._alert
        yield banner
        yield Static(describe_order(self.order), id="order-status")
        yield Static(self._tally, id="tally")
        yield BoardTable(self._views, id="boards")
        yield EventLog(self._backlog, id="log")
        yield Footer()

    def on_mount(self) -> None:
        """Keyboard focus on the boards."""
        self.query_one(BoardTable).focus()

    def show_board(self, view: BoardView) -> None:
        """Redraw one board's row."""
        try:
            self.query_one(BoardTable).show(view)
        except NoMatches:
            self._views = [view if v.location == view.location else v for v in self._views]

    def show_order(self, order: wire.OrderSummary) -> None:
        """Refresh the order line with new counts."""
        self.order = order
        try:
            self.query_one("#order-status", Static).update(describe_order(order))
        except NoMatches:
            return

    def show_tally(self, text: str) -> None:
        """Refresh the pass/fail tally."""
        self._tally = text
        try:
            self.query_one("#tally", Static).update(text)
        except NoMatches:
            return

    def alert(self, alert: Alert | None) -> None:
        """Show or clear the banner."""
        self._alert = alert
        try:
            self.query_one(Banner).alert = alert
        except NoMatches:
            return

    def log_entry(self, entry: LogEntry) -> None:
        """Append to the event log."""
        try:
            self.query_one(EventLog).add(entry)
        except NoMatches:
            self._backlog.append(entry)

    def action_start(self) -> None:
        """Start every board that is ready."""
        self.post_message(StartRequested())

    def action_retry(self) -> None:
        """Retry the highlighted board if it failed, else the first failed one."""
        self.post_message(RetryRequested(self.query_one(BoardTable).highlighted_location))

    def action_orders(self) -> None:
        """Go back to the order picker."""
        self.post_message(OrdersRequested())

    def action_quit_station(self) -> None:
        """Quit once the boards in flight are done."""
        self.post_message(QuitRequested())
