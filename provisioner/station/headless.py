"""Headless station: provision boards on the given ports/probes, one line per board, a summary."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from provisioner.errors import OrderClosed, QuotaExhausted
from provisioner.station.events import BoardAwaited, BoardFinished, StationEvent
from provisioner.station.presence import Connector
from provisioner.station.runner import StationRunner

MAX_PARALLEL_BOARDS = 8
JOIN_POLL_S = 0.2  # the main thread wakes this often, so Ctrl-C is handled at once
ORDER_ENDED_CODES = frozenset({QuotaExhausted.code, OrderClosed.code})


@dataclass(frozen=True, slots=True)
class HeadlessSummary:
    """What a headless run did; ``interrupted`` when the operator stopped it (Ctrl-C)."""

    results: tuple[BoardFinished, ...]
    recovered: tuple[BoardFinished, ...]
    requested: int = 0
    interrupted: bool = False

    @property
    def passed(self) -> int:
        """Boards the site confirmed programmed."""
        return sum(result.passed for result in self.results)

    @property
    def pending(self) -> int:
        """Boards programmed whose report the site has not taken yet."""
        return sum(result.is_programmed_pending for result in self.results)

    @property
    def failed(self) -> int:
        """Boards that did not pass (refused, failed or unknown)."""
        return len(self.results) - self.passed - self.pending

    def line(self) -> str:
        """The one-line summary."""
        pending = f", {self.pending} report pending" if self.pending else ""
        text = (f"summary: {self.passed} passed{pending}, {self.failed} failed of "
                f"{len(self.results)} (recovered {len(self.recovered)} open attempt(s))")
        if self.interrupted:
            text += f"; stopped by the operator after {len(self.results)} of {self.requested}"
        return text


def format_result(result: BoardFinished) -> str:
    """Render one finished board as one line."""
    facts = [f"chip={result.chip_uid or '-'}",
             f"device={'-' if result.device_id is None else result.device_id}",
             f"state={result.state}"]
    if result.is_programmed_pending:
        return (f"PENDING {result.location} " + " ".join(facts) + " programmed, report pending:"
                " keep the board, the station reports it when the site answers")
    verdict = "PASS" if result.passed else "FAIL"
    if not result.passed:
        facts.append(f"code={result.code or '-'}")
        facts.append(result.detail + (" (report pending)" if result.report_pending else ""))
    return f"{verdict} {result.location} " + " ".join(facts)


class _Run:
    """The shared state of one headless run: boards still to do, results, the stop flag."""

    def __init__(self, count: int, out: Callable[[str], None]) -> None:
        self.remaining = count
        self.results: list[BoardFinished] = []
        self.stop = threading.Event()
        self._out = out
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Claim one of the boards still to do (False: none left, or stopped)."""
        with self._lock:
            if self.stop.is_set() or self.remaining <= 0:
                return False
            self.remaining -= 1
            return True

    def has_work(self) -> bool:
        """Whether a board is still to be claimed."""
        with self._lock:
            return not self.stop.is_set() and self.remaining > 0

    def finished(self, result: BoardFinished) -> None:
        with self._lock:
            self.results.append(result)
            self._out(format_result(result))
            if self.remaining <= 0 or result.code in ORDER_ENDED_CODES:
                self.stop.set()  # every board done, or none can pass any more

    def listen(self, event: StationEvent) -> None:
        """Print a pending report once the site took it (the board's line is replaced)."""
        if not isinstance(event, BoardFinished) or event.report_pending:
            return
        with self._lock:
            for number, earlier in enumerate(self.results):
                if earlier.attempt_id == event.attempt_id and earlier.report_pending:
                    self.results[number] = event
                    self._out("SETTLED " + format_result(event))

    def say(self, text: str) -> None:
        with self._lock:
            self._out(text)


def run_headless(
    runner: StationRunner,
    order_id: str,
    boards: Mapping[str, Connector],
    count: int,
    *,
    out: Callable[[str], None] = print,
) -> HeadlessSummary:
    """Settle open attempts, then provision ``count`` boards over the locations (≤ 8 at once).

    Each location provisions its board, then waits for the operator to swap in another chip
    (``insert next board``) until ``count`` boards are done, the order ends, or Ctrl-C: boards
    in flight then finish (their journal and the site stay right) and the summary says so.
    """
    locations: Sequence[str] = list(boards)[:MAX_PARALLEL_BOARDS]
    if not locations:
        raise ValueError("no boards: give at least one --port or --probe")
    recovered = runner.recover(boards, _quiet)
    for result in recovered:
        out("RECOVERED " + format_result(result))
    run = _Run(count, out)

    def serve(location: str) -> None:
        last: BoardFinished | None = None
        while run.has_work():
            # the next board is claimed only once it is there: another location may take it
            if last is not None and not runner.await_next_board(
                    order_id, location, boards[location], last.chip_uid,
                    lambda event: _say_waiting(run, event), run.stop,
                    retry_same=not (last.passed or last.report_pending)):
                return
            if not run.take():
                return
            last = runner.provision_board(order_id, location, boards[location], run.listen)
            run.finished(last)

    threads = [threading.Thread(target=serve, args=(location,), name=f"board {location}")
               for location in locations]
    for thread in threads:
        thread.start()
    interrupted = False
    try:
        _join(threads)
        if runner.reports.count:
            out(f"waiting for the site to take {runner.reports.count} pending report(s); "
                "Ctrl-C leaves them to the next start")
            runner.reports.wait_settled(threading.Event(), JOIN_POLL_S)
    except KeyboardInterrupt:
        interrupted = True
        run.stop.set()
        out("stopping: boards in flight finish, no new board is started")
        _join(threads)
    summary = HeadlessSummary(tuple(run.results), tuple(recovered), count, interrupted)
    out(summary.line())
    return summary


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        while thread.is_alive():
            thread.join(JOIN_POLL_S)


def _say_waiting(run: _Run, event: StationEvent) -> None:
    if isinstance(event, BoardAwaited):
        run.say(f"WAIT {event.location}: {event.message}")


def _quiet(event: StationEvent) -> None:
    """Headless mode prints finished boards only."""
