"""The order picker's table: orders with their counts and whether a board can still be made."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from provisioner import wire

COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("order_id", "Order", 15),
    ("product", "Product", 12),
    ("profile", "Profile", 11),
    ("authorised", "Qty", 5),
    ("produced", "Done", 5),
    ("remaining", "Left", 5),
    ("status", "Status", 9),
)


def order_status(order: wire.OrderSummary) -> str:
    """What the operator needs to know about an order: can a board still be produced for it?"""
    if order.status is wire.OrderStatus.closed:
        return "closed"
    if order.produced >= order.authorised_quantity:
        return "exhausted"
    if order.remaining <= 0:
        return "all busy"  # the last units are being programmed right now
    return "open"


class OrderTable(DataTable[Text]):
    """Rows keyed by order id; ``show`` replaces them all."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self._orders: dict[str, wire.OrderSummary] = {}

    def on_mount(self) -> None:
        """Create the columns."""
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)

    def show(self, orders: Sequence[wire.OrderSummary]) -> None:
        """Replace the rows with ``orders``, keeping the cursor on the same order if present."""
        keep = self.highlighted_order
        self.clear()
        self._orders = {order.order_id: order for order in orders}
        for order in orders:
            status = order_status(order)
            exhausted = status != "open"
            style = "dim" if exhausted else ""
            self.add_row(
                Text(order.order_id, style=style),
                Text(order.product, style=style),
                Text(order.profile, style=style),
                Text(str(order.authorised_quantity), justify="right", style=style),
                Text(str(order.produced), justify="right", style=style),
                Text(str(order.remaining), justify="right",
                     style="red" if exhausted else "bold"),
                Text(status, style="red" if exhausted else "green"),
                key=order.order_id,
            )
        if keep is not None and keep.order_id in self._orders:
            self.move_cursor(row=self.get_row_index(keep.order_id))

    @property
    def highlighted_order(self) -> wire.OrderSummary | None:
        """The order under the cursor, if any."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else self._orders.get(row_key.value)
