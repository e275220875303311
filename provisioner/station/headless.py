"""Headless station: provision boards on the given ports/probes, one line per board, a summary."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provisioner.flash.backend import FlashBackend
from provisioner.station.events import BoardFinished, StationEvent
from provisioner.station.runner import StationRunner

MAX_PARALLEL_BOARDS = 8

BackendFactory = Callable[[], FlashBackend]


@dataclass(frozen=True, slots=True)
class HeadlessSummary:
    """What a headless run did."""

    results: tuple[BoardFinished, ...]
    recovered: tuple[BoardFinished, ...]

    @property
    def passed(self) -> int:
        """Boards the site confirmed programmed."""
        return sum(result.passed for result in self.results)

    @property
    def failed(self) -> int:
        """Boards that did not pass (refused, failed or unknown)."""
        return len(self.results) - self.passed

    def line(self) -> str:
        """The one-line summary."""
        return (f"summary: {self.passed} passed, {self.failed} failed of {len(self.results)}"
                f" (recovered {len(self.recovered)} open attempt(s))")


def format_result(result: BoardFinished) -> str:
    """Render one finished board as one line."""
    verdict = "PASS" if result.passed else "FAIL"
    facts = [f"chip={result.chip_uid or '-'}",
             f"device={'-' if result.device_id is None else result.device_id}",
             f"state={result.state}"]
    if not result.passed:
        facts.append(f"code={result.code or '-'}")
        facts.append(result.detail)
    return f"{verdict} {result.location} " + " ".join(facts)


def run_headless(
    runner: StationRunner,
    order_id: str,
    boards: Mapping[str, BackendFactory],
    count: int,
    *,
    out: Callable[[str], None] = print,
    between_rounds: Callable[[int], None] | None = None,
) -> HeadlessSummary:
    """Settle open attempts, then provision ``count`` boards, one worker per location (≤ 8).

    Boards are taken in rounds of one per location; ``between_rounds(round_no)`` runs before
    each round after the first (an operator swaps boards). A board's failure never stops the
    others.
    """
    locations: Sequence[str] = list(boards)
    if not locations:
        raise ValueError("no boards: give at least one --port or --probe")
    recovered = runner.recover({loc: factory() for loc, factory in boards.items()}, _quiet)
    for result in recovered:
        out("RECOVERED " + format_result(result))
    results: list[BoardFinished] = []
    round_no = 0
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_BOARDS, len(locations))) as pool:
        while len(results) < count:
            if round_no and between_rounds is not None:
                between_rounds(round_no)
            batch = locations[: count - len(results)]
            futures = [
                pool.submit(runner.provision_board, order_id, location, boards[location](),
                            _quiet)
                for location in batch
            ]
            for future in futures:
                result = future.result()
                out(format_result(result))
                results.append(result)
            round_no += 1
    summary = HeadlessSummary(tuple(results), tuple(recovered))
    out(summary.line())
    return summary


def _quiet(event: StationEvent) -> None:
    """Headless mode prints finished boards only."""
