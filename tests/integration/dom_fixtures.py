"""Open an HTML file in headless Chromium (Debian `chromium`): screenshot and rendered DOM."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
          "--no-first-run", "--disable-extensions")


def chromium() -> str:
    """The chromium binary, or skip saying how to get it."""
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("headless Chromium not installed (Debian package `chromium`)")
    return found


def render(page: Path, screenshot: Path) -> str:
    """Take a screenshot of ``page`` and return the DOM Chromium rendered from it."""
    binary = chromium()
    url = page.resolve().as_uri()
    profile = screenshot.parent / "chromium-profile"
    common = [binary, *_FLAGS, f"--user-data-dir={profile}"]
    subprocess.run([*common, "--window-size=1500,2400", f"--screenshot={screenshot}", url],
                   check=True, capture_output=True, timeout=120)
    dumped = subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True,
                            timeout=120)
    return dumped.stdout.decode("utf-8")


@dataclass
class RenderedPage(HTMLParser):
    """What the rendered DOM shows: bar values per chart figure, table cells, texts by id."""

    bars: dict[str, list[str]] = field(default_factory=dict)
    tables: dict[str, list[list[str]]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    _figure: str | None = None
    _table: str | None = None
    _row: list[str] | None = None
    _capture: str | None = None
    _id_stack: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        HTMLParser.__init__(self)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "figure":
            self._figure = found.get("id")
            self.bars[self._figure or ""] = []
        elif tag == "table":
            self._table = found.get("data-section")
            self.tables[self._table or ""] = []
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "desc" and found.get("class") == "value" and self._figure:
            self._capture = "bar"
        elif tag in ("td", "th") and self._row is not None:
            self._capture = "cell"
            self._row.append("")
        elif found.get("id") in ("verdict", "key-id", "head", "span", "source"):
            self._capture = "id:" + str(found["id"])
            self.texts[str(found["id"])] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        elif tag == "table":
            self._table = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag in ("desc", "td", "th", "p", "dd"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture == "bar" and self._figure:
            self.bars[self._figure].append(data.strip())
        elif self._capture == "cell" and self._row is not None:
            self._row[-1] += data.strip()
        elif self._capture and self._capture.startswith("id:"):
            key = self._capture[3:]
            self.texts[key] = (self.texts[key] + " " + data.strip()).strip()


def parse(dom: str) -> RenderedPage:
    """Parse a dumped DOM."""
    page = RenderedPage()
    page.feed(dom)
    return page
