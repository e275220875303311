"""The bench's event log stays on its newest line while boards report, until the operator
scrolls up to read back (Textual's scroll anchor)."""

from __future__ import annotations

from datetime import datetime

from textual.app import App, ComposeResult

from provisioner.station.ui.widgets.event_log import EventLog, LogEntry

STAMP = datetime(2026, 12, 2, 9, 30, 0)
LONG = "FAIL /dev/ttyUSB2: quota_exhausted: order o-5a1e0c0ffee1 has no units left " * 2


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield EventLog(id="log")


async def test_the_log_shows_its_newest_wrapped_line_after_a_resize() -> None:
    app = LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(EventLog)
        for number in range(40):
            log.add(LogEntry(STAMP, f"board {number}: {LONG}", "fail"))
        await pilot.pause()
        await pilot.resize_terminal(50, 9)
        log.add(LogEntry(STAMP, LONG, "fail"))
        await pilot.pause()
        assert log.max_scroll_y > 0
        assert log.scroll_y == log.max_scroll_y


async def test_the_log_stays_where_the_operator_scrolled_to() -> None:
    app = LogApp()
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(EventLog)
        for number in range(40):
            log.add(LogEntry(STAMP, f"board {number} programmed"))
        await pilot.pause()
        log.focus()
        await pilot.press("home")  # as the operator reads back
        await pilot.pause()
        log.add(LogEntry(STAMP, "board 41 programmed", "pass"))
        await pilot.pause()
        assert log.scroll_y == 0
