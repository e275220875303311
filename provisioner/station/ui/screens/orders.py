"""Order picker: open orders with authorised, produced and remaining counts."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from provisioner import wire
from provisioner.station.ui.messages import OrderChosen, OrdersRequested, QuitRequested
from provisioner.station.ui.widgets.banner import Alert, Banner
from provisioner.station.ui.widgets.order_table import OrderTable


class OrdersScreen(Screen[None]):
    """Pick the order to produce; posts ``OrderChosen``."""

    BINDINGS = [
        Binding("enter", "choose", "Produce order", priority=True, id="orders.choose"),
        Binding("f5", "refresh", "Refresh", id="orders.refresh"),
        Binding("q", "quit_station", "Quit", id="orders.quit"),
    ]

    def __init__(self, orders: Sequence[wire.OrderSummary]) -> None:
        super().__init__(id="orders")
        self._orders = list(orders)

    def compose(self) -> ComposeResult:
        """Lay out banner, hint and table."""
        yield Header()
        yield Banner(id="banner")
        yield Static("Orders for this station: ↑↓ to pick, Enter to produce",
                     id="orders-hint")
        yield OrderTable(id="order-table")
        yield Footer()

    def on_mount(self) -> None:
        """Fill the table and focus it."""
        self.show_orders(self._orders)
        self.query_one(OrderTable).focus()

    def show_orders(self, orders: Sequence[wire.OrderSummary]) -> None:
        """Replace the listed orders; an empty list says so in the banner."""
        self._orders = list(orders)
        self.query_one(OrderTable).show(orders)
        self.alert(None if orders else Alert("warning", "No open order for this station. "
                                                        "Ask a supervisor, then press F5."))

    def alert(self, alert: Alert | None) -> None:
        """Show or clear the banner."""
        self.query_one(Banner).alert = alert

    def action_choose(self) -> None:
        """Produce the highlighted order."""
        order = self.query_one(OrderTable).highlighted_order
        if order is not None:
            self.post_message(OrderChosen(order))

    def action_refresh(self) -> None:
        """Ask the site for fresh counts."""
        self.post_message(OrdersRequested())

    def action_quit_station(self) -> None:
        """Quit the station."""
        self.post_message(QuitRequested())
