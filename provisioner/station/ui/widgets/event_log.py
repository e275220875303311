"""The bench's event log pane: one timestamped line per thing that happened."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from rich.text import Text
from textual.widgets import RichLog

LogLevel = Literal["info", "pass", "fail", "warning"]
_STYLE: dict[LogLevel, str] = {"info": "", "pass": "green", "fail": "red", "warning": "yellow"}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log line; ``time`` is the station clock when the app received the event."""

    time: datetime
    text: str
    level: LogLevel = "info"

    def render(self) -> Text:
        """Return the line as styled text."""
        line = Text(self.time.strftime("%H:%M:%S "), style="dim")
        line.append(self.text, style=_STYLE[self.level])
        return line


class EventLog(RichLog):
    """A scrolling log that starts with ``backlog`` (entries from before the bench opened)."""

    def __init__(self, backlog: Iterable[LogEntry] = (), *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, auto_scroll=False,
                         min_width=20)
        self._backlog = list(backlog)

    def on_mount(self) -> None:
        """Write the backlog and stay at the newest line (until the operator scrolls up)."""
        self.anchor()
        for entry in self._backlog:
            self.write(entry.render())
        self._backlog.clear()

    def add(self, entry: LogEntry) -> None:
        """Append one entry (after the backlog when not mounted yet)."""
        if self.is_mounted:
            self.write(entry.render())
        else:
            self._backlog.append(entry)
