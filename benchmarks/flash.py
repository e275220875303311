"""Serial benchmark: our SerialRomBackend vs Debian's stm32flash, 64 KiB on a throttled board.

Both run as separate processes against the board served by this one (our worker times itself
from open to close; stm32flash is timed from spawn to exit). Both write the same 64 KiB image
(erase the pages it covers, then program; no verify) to the virtual AN3155 board paced at
115200 baud 8N1 (10 bits per byte on the wire). Prints medians, the ratio, and the payload rate
as a share of the line rate (protocol overhead included).
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAUD = 115200
BITS_PER_BYTE = 10  # a pty is 8N1; a real chip at 8E1 spends 11
PROFILE = "stm32f103c8"
FLASH_BASE = 0x08000000
IMAGE_BYTES = 0x10000
ROUNDS = 3


def _image() -> bytes:
    return b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest()
                    for i in range(IMAGE_BYTES // 32))


def worker(port: str) -> None:
    """One run of our backend in its own process (as stm32flash runs); prints seconds taken."""
    print(f"{_ours(port, _image()):.6f}")


def _ours_process(port: str) -> float:
    result = subprocess.run([sys.executable, __file__, "--worker", port], check=True,
                            capture_output=True, text=True, timeout=600)
    return float(result.stdout.strip().splitlines()[-1])


def _ours(port: str, image: bytes) -> float:
    from hw_profiles import load_profile
    from provisioner.flash.backend import MemorySegment, opened
    from provisioner.flash.serial_rom.backend import SerialRomBackend

    segment = MemorySegment(FLASH_BASE, image)
    backend = SerialRomBackend(port, load_profile(PROFILE), baud=BAUD)
    started = time.perf_counter()
    with opened(backend):
        backend.erase([(segment.start, segment.end)])
        backend.program([segment])
    return time.perf_counter() - started


def _stm32flash(tool: str, port: str, path: Path) -> float:
    started = time.perf_counter()
    subprocess.run([tool, "-m", "8n1", "-b", str(BAUD), "-w", str(path),
                    "-S", f"0x{FLASH_BASE:08x}", port],
                   check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def run_serial_benchmark(rounds: int = ROUNDS) -> list[str]:
    """Time both writers on fresh throttled boards; return the report lines."""
    from hw_profiles import load_profile
    from provisioner.sim.an3155_board import VirtualSerialBoard

    tool = shutil.which("stm32flash")
    if tool is None:
        return ["serial: stm32flash is not installed (apt-get install stm32flash)"]
    profile = load_profile(PROFILE)
    image = _image()
    times: dict[str, list[float]] = {"ours": [], "stm32flash": []}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "image.bin"
        path.write_bytes(image)  # synthetic benchmark data, not a firmware image or a key
        for _ in range(rounds):
            for name in times:
                board = VirtualSerialBoard(profile, chip_uid=bytes(12), throttle_baud=BAUD,
                                           bits_per_byte=BITS_PER_BYTE)
                port = board.start()
                try:
                    elapsed = (_ours_process(port) if name == "ours"
                               else _stm32flash(tool, port, path))
                    if board.flash_bytes(FLASH_BASE, IMAGE_BYTES) != image:
                        raise RuntimeError(f"{name} did not write the image")
                finally:
                    board.stop()
                times[name].append(elapsed)
    line_s = IMAGE_BYTES * BITS_PER_BYTE / BAUD
    ours, peer = statistics.median(times["ours"]), statistics.median(times["stm32flash"])
    return [
        f"serial write of {IMAGE_BYTES // 1024} KiB at {BAUD} baud 8N1, median of {rounds}:",
        f"  ours        {ours:7.2f} s   {100 * line_s / ours:5.1f} % of line rate",
        f"  stm32flash  {peer:7.2f} s   {100 * line_s / peer:5.1f} % of line rate",
        f"  ratio stm32flash/ours {peer / ours:.2f} (>= 1 means ours is at least as fast); "
        f"bare payload would take {line_s:.2f} s",
    ]


def main() -> None:
    """Print the serial benchmark, then the SWD one (``benchmarks/flash_swd.py``)."""
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
        return
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else ROUNDS
    for line in run_serial_benchmark(rounds):
        print(line, flush=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from flash_swd import run_swd_benchmark

    for line in run_swd_benchmark(rounds):
        print(line, flush=True)


if __name__ == "__main__":
    main()
