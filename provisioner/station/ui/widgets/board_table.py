"""The bench table: one row per attached board, with state, progress bar and verdict."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import DataTable

from provisioner.station.ui.board_view import BoardView, Verdict

BAR_WIDTH = 6
# (key, label, width): sized so the table fits 80 columns with cell padding.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("board", "Board", 12),
    ("chip_uid", "Chip UID", 10),
    ("device_id", "Device", 6),
    ("state", "State", 23),  # the longest code: grant_already_completed
    ("progress", "Progress", BAR_WIDTH + 5),
    ("result", "Result", 6),
)
_VERDICT_STYLE = {
    Verdict.idle: "dim",
    Verdict.waiting: "bold yellow",
    Verdict.pending: "bold yellow",
    Verdict.running: "bold",
    Verdict.passed: "bold green",
    Verdict.failed: "bold red",
}


def _tail(text: str, width: int) -> str:
    """Keep the end of ``text`` (the distinctive part of ports and chip UIDs)."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _progress(view: BoardView) -> Text:
    if view.operation is None:
        return Text("")
    filled = view.percent * BAR_WIDTH // 100
    bar = Text("█" * filled, style="green" if view.verdict is Verdict.passed else "cyan")
    bar.append("░" * (BAR_WIDTH - filled), style="dim")
    bar.append(f"{view.percent:4d}%")
    return bar


def _state(view: BoardView) -> Text:
    """The engine state; the operation while flashing; the failure's code once failed."""
    if view.verdict is Verdict.failed:
        return Text(view.code or view.state, style="red")
    if view.verdict in (Verdict.waiting, Verdict.pending):
        return Text(view.state, style="yellow")
    if view.verdict is Verdict.running and view.operation is not None and view.percent < 100:
        return Text(view.operation.value + "…")
    return Text(view.state)


def _result(view: BoardView) -> Text:
    style = _VERDICT_STYLE[view.verdict]
    if view.verdict is Verdict.passed:
        return Text("PASS", style=style)
    if view.verdict is Verdict.failed:
        return Text("FAIL", style=style)
    if view.verdict is Verdict.pending:
        return Text("SENT?", style=style)
    if view.verdict in (Verdict.running, Verdict.waiting):
        return Text("…", style=style)
    return Text("-", style=style)


def render_row(view: BoardView) -> list[Text]:
    """Return the cells of ``view``'s row, in ``COLUMNS`` order."""
    style = _VERDICT_STYLE[view.verdict]
    return [
        Text(_tail(view.location, COLUMNS[0][2]), style=style),
        Text(_tail(view.chip_uid or "-", COLUMNS[1][2])),
        Text("-" if view.device_id is None else str(view.device_id), justify="right"),
        _state(view),
        _progress(view),
        _result(view),
    ]


class BoardTable(DataTable[Text]):
    """Rows keyed by location; ``show`` redraws one row from its view."""

    def __init__(self, views: Iterable[BoardView], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._views = {view.location: view for view in views}
        self._has_rows = False

    def on_mount(self) -> None:
        """Create the columns and one row per attached board."""
        for key, label, width in COLUMNS:
            self.add_column(label, width=width, key=key)
        for view in self._views.values():
            self.add_row(*render_row(view), key=view.location)
        self._has_rows = True

    def show(self, view: BoardView) -> None:
        """Redraw the row of ``view.location`` (kept for ``on_mount`` if not mounted yet)."""
        self._views[view.location] = view
        if not self._has_rows:
            return
        for (key, _, _), cell in zip(COLUMNS, render_row(view), strict=True):
            self.update_cell(view.location, key, cell)

    @property
    def highlighted_location(self) -> str | None:
        """The location under the cursor, if any row exists."""
        if self.row_count == 0:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return None if row_key.value is None else str(row_key.value)
