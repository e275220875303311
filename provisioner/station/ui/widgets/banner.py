"""A one-line, full-width banner for conditions the operator must not miss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.reactive import reactive
from textual.widgets import Static

BannerLevel = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Alert:
    """What the banner says and how loudly."""

    level: BannerLevel
    text: str


class Banner(Static):
    """Shows ``alert``; hidden while it is ``None``."""

    alert: reactive[Alert | None] = reactive(None, always_update=True)

    def watch_alert(self, alert: Alert | None) -> None:
        """Show, restyle or hide the banner."""
        self.display = alert is not None
        for level in ("error", "warning", "info"):
            self.set_class(alert is not None and alert.level == level, f"-{level}")
        self.update("" if alert is None else alert.text)
