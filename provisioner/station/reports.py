"""Reports the site did not acknowledge (it was unreachable), resent until it answers.

A board whose report is pending is programmed (or failed) and journaled; only the site's
acknowledgement is missing. The report is resent with the same request id (so the site counts
it once) in the background every ``retry_s``, or at once when asked (``settle_now``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from provisioner.station.engine import Attempt
from provisioner.station.events import Listener

RETRY_S = 2.0


@dataclass(frozen=True, slots=True)
class PendingReport:
    """The attempt as its report was first sent, who to tell, and the protection it claimed."""

    attempt: Attempt
    listener: Listener
    protected: bool


class PendingReports:
    """The pending reports of one station process; ``send`` returns True once one is settled."""

    def __init__(self, send: Callable[[PendingReport], bool], retry_s: float = RETRY_S) -> None:
        self._send = send
        self.retry_s = retry_s
        self._items: dict[str, PendingReport] = {}
        self._lock = threading.Lock()
        self._settle_lock = threading.Lock()  # one pass at a time: each report settles once
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, report: PendingReport) -> None:
        """Keep ``report`` and make sure the background retry runs."""
        with self._lock:
            self._items[report.attempt.attempt_id] = report
            if self._thread is None and not self._closing.is_set():
                self._thread = threading.Thread(target=self._loop, name="pending reports",
                                                daemon=True)
                self._thread.start()

    def holds(self, attempt_id: str) -> bool:
        """Whether the report of ``attempt_id`` is pending."""
        with self._lock:
            return attempt_id in self._items

    @property
    def count(self) -> int:
        """How many reports still wait for the site."""
        with self._lock:
            return len(self._items)

    def settle_now(self) -> int:
        """Resend every pending report once; return how many are still pending."""
        with self._settle_lock:
            with self._lock:
                items = list(self._items.values())
            for report in items:
                if self._closing.is_set():
                    break
                if self._send(report):
                    with self._lock:
                        self._items.pop(report.attempt.attempt_id, None)
            return self.count

    def wait_settled(self, stop: threading.Event, poll_s: float) -> bool:
        """Block until none is pending (True) or ``stop`` is set (False)."""
        while self.count:
            if stop.wait(poll_s):
                return False
        return True

    def _loop(self) -> None:
        while not self._closing.wait(self.retry_s):
            self.settle_now()
            with self._lock:
                if not self._items:
                    self._thread = None
                    return

    def close(self) -> None:
        """Stop retrying (what is still pending stays open in the journal for ``recover``)."""
        self._closing.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
