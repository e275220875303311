"""SWD benchmark: our SwdBackend vs ``pyocd flash``, same image, same virtual board.

Both run as fresh processes (interpreter start, pyOCD import, connect, flash, disconnect) so the
wall-clock figures compare like with like; our worker also reports its connect/erase/program/verify
breakdown. Prints medians and the ratio ours / pyOCD (target: within 5 %).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILE = "stm32f103c8"
PROBE = "VBENCH01"
FLASH_BASE = 0x08000000
IMAGE_BYTES = 0x10000
ROUNDS = 5
PHASES = ("connect", "erase", "program", "verify", "close")


def _image() -> bytes:
    return b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest()
                    for i in range(IMAGE_BYTES // 32))


def worker(directory: str) -> None:
    """One run of our backend in this process; prints its phase timings as JSON."""
    os.environ["PROVISIONER_VIRTUAL_PROBES"] = directory
    from hw_profiles import load_profile
    from provisioner.flash.backend import MemorySegment
    from provisioner.flash.swd import SwdBackend

    segments = [MemorySegment(FLASH_BASE, _image())]
    backend = SwdBackend(PROBE, load_profile(PROFILE))
    marks = [time.perf_counter()]
    backend.open()
    marks.append(time.perf_counter())
    backend.erase(None)
    marks.append(time.perf_counter())
    backend.program(segments)
    marks.append(time.perf_counter())
    backend.verify(segments)
    marks.append(time.perf_counter())
    backend.close()
    marks.append(time.perf_counter())
    print(json.dumps({p: marks[i + 1] - marks[i] for i, p in enumerate(PHASES)}))


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout + done.stderr


def _loader_seconds(log: str) -> float:
    """pyOCD's own erase+program time, from the rate its flash loader logs."""
    match = re.search(r"programmed (\d+) bytes .* at ([\d.]+) kB/s", log)
    if match is None:
        raise RuntimeError("pyocd flash did not log its programming rate")
    return int(match.group(1)) / (float(match.group(2)) * 1024)


def run_swd_benchmark(rounds: int = ROUNDS) -> list[str]:
    """Run both tools ``rounds`` times, alternating, and return the report lines."""
    from intelhex import IntelHex

    from provisioner.sim.swd_board import create_virtual_board

    pyocd = shutil.which("pyocd")
    if pyocd is None:
        return ["swd: pyocd command not found; benchmark skipped"]
    with tempfile.TemporaryDirectory() as tmp:
        boards = Path(tmp) / "boards"
        hex_path = Path(tmp) / "image.hex"
        image = IntelHex()
        image.frombytes(_image(), offset=FLASH_BASE)
        image.write_hex_file(str(hex_path))
        env = {**os.environ, "PROVISIONER_VIRTUAL_PROBES": str(boards)}
        ours_wall: list[float] = []
        theirs_wall: list[float] = []
        theirs_loader: list[float] = []
        phases: dict[str, list[float]] = {p: [] for p in PHASES}
        for _ in range(rounds):
            create_virtual_board(boards, PROBE, PROFILE, bytes(12))  # both start from blank
            wall, out = _timed([sys.executable, __file__, "--worker", str(boards)], env)
            ours_wall.append(wall)
            for phase, seconds in json.loads(out.strip().splitlines()[-1]).items():
                phases[phase].append(seconds)
            create_virtual_board(boards, PROBE, PROFILE, bytes(12))
            wall, log = _timed([pyocd, "flash", "-t", PROFILE, "-u",
                                f"provisioner_virtual:{PROBE}", str(hex_path)], env)
            theirs_wall.append(wall)
            theirs_loader.append(_loader_seconds(log))
    ours, theirs = statistics.median(ours_wall), statistics.median(theirs_wall)
    lines = [f"swd: {IMAGE_BYTES // 1024} KiB image, virtual {PROFILE}, median of {rounds} runs"]
    lines.append("  ours (process): " + ", ".join(
        f"{p} {statistics.median(v) * 1000:.0f} ms" for p, v in phases.items()))
    lines.append(f"  ours  wall {ours * 1000:.0f} ms (erase+program+verify, process included)")
    ours_flash = statistics.median(phases["erase"]) + statistics.median(phases["program"])
    theirs_flash = statistics.median(theirs_loader)
    lines.append(f"  pyocd flash wall {theirs * 1000:.0f} ms (sector erase+program); its loader "
                 f"{theirs_flash * 1000:.0f} ms vs our erase+program {ours_flash * 1000:.0f} ms")
    lines.append(f"  ratio ours/pyocd: wall {ours / theirs:.3f}, erase+program "
                 f"{ours_flash / theirs_flash:.3f} (target <= 1.05)")
    return lines


def main() -> None:
    """Command-line entry: print the benchmark report."""
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
        return
    for line in run_swd_benchmark():
        print(line)


if __name__ == "__main__":
    main()
