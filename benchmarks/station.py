"""Station overhead per board (all but erase/program/verify), with the site on loopback TLS.

Prints the median overhead, its breakdown per engine state, and the write-ahead key-stream
persistence against the peer it replaces (re-sealing the station file with scrypt per board).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from provisioner.crypto.sealed import StationSecrets, save_station_secrets
from provisioner.crypto.secret import Secret
from provisioner.demo import demo_site, virtual_boards
from provisioner.flash.backend import FlashBackend, MemorySegment, ProgressCallback, no_progress
from provisioner.station.events import BoardUpdate, StationEvent
from provisioner.station.unlock import open_station

BOARDS = 12
PASSPHRASE = "benchmark passphrase"
TARGET_MS = 50.0


class TimedBackend:
    """Forwards to a backend, adding up the time spent in erase/program/verify."""

    def __init__(self, inner: FlashBackend) -> None:
        self.inner = inner
        self.flash_s = 0.0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def _timed(self, call: object, *args: object) -> None:
        started = time.perf_counter()
        try:
            call(*args)  # type: ignore[operator]
        finally:
            self.flash_s += time.perf_counter() - started

    def erase(self, ranges: Iterable[tuple[int, int]] | None = None,
              progress: ProgressCallback = no_progress) -> None:
        self._timed(self.inner.erase, ranges, progress)

    def program(self, segments: Iterable[MemorySegment],
                progress: ProgressCallback = no_progress) -> None:
        self._timed(self.inner.program, segments, progress)

    def verify(self, segments: Iterable[MemorySegment],
               progress: ProgressCallback = no_progress) -> None:
        self._timed(self.inner.verify, segments, progress)


def main(argv: list[str]) -> int:
    swd = "--swd" in argv  # virtual SWD probes instead of AN3155 boards on ptys
    with tempfile.TemporaryDirectory(prefix="bench-station-") as tmp:
        work = Path(tmp)
        boards_cm = (virtual_boards(0, swd_count=BOARDS, swd_dir=work / "swd") if swd
                     else virtual_boards(BOARDS))
        with demo_site(work) as site, boards_cm as boards:
            site.enrol_station(work / "station", "station-bench", PASSPHRASE)
            order_id = site.add_order(BOARDS)
            runner = open_station(work / "station", PASSPHRASE)
            runner.sign_in(site.operator_id, site.pin)
            overheads_ms: list[float] = []
            per_state: dict[str, list[float]] = defaultdict(list)
            try:
                for board in boards:
                    marks: list[tuple[float, str]] = []

                    def listen(event: StationEvent, marks: list[tuple[float, str]] = marks
                               ) -> None:
                        if isinstance(event, BoardUpdate):
                            marks.append((time.perf_counter(), event.state.value))

                    backend = TimedBackend(board.factory())
                    started = time.perf_counter()
                    result = runner.provision_board(order_id, board.location, backend,
                                                    listen)  # type: ignore[arg-type]
                    ended = time.perf_counter()
                    if not result.passed:
                        print(f"board failed: {result}", file=sys.stderr)
                        return 1
                    overheads_ms.append((ended - started - backend.flash_s) * 1000)
                    spans = zip(marks, [*marks[1:], (ended, "end")], strict=True)
                    for (at, state), (next_at, _) in spans:
                        span = next_at - at - (backend.flash_s if state == "flashing" else 0)
                        per_state[state].append(span * 1000)
                    per_state["(before detected)"].append((marks[0][0] - started) * 1000)
            finally:
                runner.close()
        reseal_ms = _scrypt_reseal_ms()
    write_ahead = statistics.median(per_state["granted"])
    p50 = statistics.median(overheads_ms)
    transport = "virtual SWD" if swd else "virtual AN3155 serial"
    print(f"station overhead per board over {BOARDS} {transport} boards"
          " (erase/program/verify excluded)")
    print(f"  p50 {p50:7.2f} ms   max {max(overheads_ms):7.2f} ms   target <= {TARGET_MS} ms"
          f"   ratio p50/target {p50 / TARGET_MS:.2f}")
    print("  median per engine state (time spent in the state):")
    for state, spans in per_state.items():
        print(f"    {state:<18} {statistics.median(spans):7.2f} ms")
    print(f"key-stream persistence: state 'granted' (site call + write-ahead + key) "
          f"{write_ahead:.2f} ms vs one scrypt re-seal {reseal_ms:.2f} ms "
          f"(ratio {reseal_ms / max(write_ahead, 1e-6):.1f}x)")
    return 0


def _scrypt_reseal_ms() -> float:
    """The peer design: re-seal the whole station file (scrypt n=2^15) once per board."""
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            secrets = StationSecrets("s", Secret(bytes(64)), Secret(bytes(32)), Secret(bytes(200)))
            started = time.perf_counter()
            save_station_secrets(Path(tmp) / "s.sealed", secrets, PASSPHRASE)
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
