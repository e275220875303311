"""Benchmark hex_generator against intelhex and bincopy: parse, patch, write Intel HEX.

Usage: python benchmarks/hex.py [--quick]
Prints medians (ms) per library and size, ratios peer/ours, and our tracemalloc peaks.
"""

from __future__ import annotations

import io
import random
import statistics
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable

import bincopy
from intelhex import IntelHex

from hex_generator import (
    ChecksumAlgorithm,
    ChecksumSpec,
    PatchLayout,
    Zone,
    ZoneEncoding,
    emit_ihex,
    parse_binary,
    parse_ihex,
    patch,
)

BASE = 0x08000000
KEY = bytes(range(16))
SIZES = [(64 * 1024, 9), (1024 * 1024, 5), (8 * 1024 * 1024, 3)]


def median_s(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        result = action()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak


def make_template(size: int) -> bytes:
    data = bytearray(random.Random(size).randbytes(size))
    data[-64:] = b"\xff" * 64  # blank ID, key and checksum zones
    return bytes(data)


def layout_for(size: int) -> PatchLayout:
    end = BASE + size
    return PatchLayout(
        id_zone=Zone("device_id", end - 64, 4, ZoneEncoding.u32le),
        key_zone=Zone("key", end - 48, 16, ZoneEncoding.raw),
        checksum=ChecksumSpec(ChecksumAlgorithm.crc32, BASE, end - 4, end - 4, 4, "little"),
        image_start=BASE,
        image_end=end,
    )


def intelhex_patch(ih: IntelHex, size: int) -> None:
    end = BASE + size
    ih.puts(end - 64, (7).to_bytes(4, "little"))
    ih.puts(end - 48, KEY)
    crc = zlib.crc32(ih.tobinstr(BASE, end - 5))
    ih.puts(end - 4, crc.to_bytes(4, "little"))


def bincopy_patch(bf: bincopy.BinFile, size: int) -> None:
    end = BASE + size
    bf.add_binary((7).to_bytes(4, "little"), end - 64, overwrite=True)
    bf.add_binary(KEY, end - 48, overwrite=True)
    crc = zlib.crc32(bf.as_binary(BASE, end - 4))
    bf.add_binary(crc.to_bytes(4, "little"), end - 4, overwrite=True)


def bench_size(size: int, repeats: int) -> dict[str, dict[str, float]]:
    image = parse_binary(make_template(size), BASE)
    text = emit_ihex(image)
    layout = layout_for(size)
    ih = IntelHex(io.StringIO(text))
    bf = bincopy.BinFile()
    bf.add_ihex(text)
    results = {
        "ours": {
            "parse": median_s(lambda: parse_ihex(text), repeats),
            "patch": median_s(lambda: patch(image, layout, 7, KEY), repeats),
            "write": median_s(lambda: emit_ihex(image), repeats),
        },
        "intelhex": {
            "parse": median_s(lambda: IntelHex(io.StringIO(text)), repeats),
            "patch": median_s(lambda: intelhex_patch(ih, size), repeats),
            "write": median_s(lambda: ih.write_hex_file(io.StringIO()), repeats),
        },
        "bincopy": {
            "parse": median_s(lambda: bincopy.BinFile().add_ihex(text), repeats),
            "patch": median_s(lambda: bincopy_patch(bf, size), repeats),
            "write": median_s(lambda: bf.as_ihex(), repeats),
        },
    }
    for timings in results.values():
        timings["parse+write"] = timings["parse"] + timings["write"]
    return results


def memory_row(size: int) -> str:
    image = parse_binary(make_template(size), BASE)
    text = emit_ihex(image)
    layout = layout_for(size)
    peaks = {
        "parse": peak_bytes(lambda: parse_ihex(text)),
        "patch": peak_bytes(lambda: patch(image, layout, 7, KEY)),
        "write": peak_bytes(lambda: emit_ihex(image)),
    }
    cells = "  ".join(
        f"{op} {peak / 2**20:6.1f} MiB ({peak / size:4.2f}x)" for op, peak in peaks.items()
    )
    return f"{size // 1024:>6} KiB  {cells}"


def main(argv: list[str]) -> int:
    sizes = SIZES[:2] if "--quick" in argv else SIZES
    ops = ["parse", "patch", "write", "parse+write"]
    print(f"Python {sys.version.split()[0]}; medians in ms; ratio = peer time / our time")
    header = f"{'size':>10} {'op':<12}" + "".join(
        f"{lib:>12}" for lib in ("ours", "intelhex", "bincopy")
    )
    print(header + f"{'x intelhex':>12}{'x bincopy':>12}")
    for size, repeats in sizes:
        results = bench_size(size, repeats)
        for op in ops:
            ours = results["ours"][op]
            cells = "".join(
                f"{results[lib][op] * 1e3:12.1f}" for lib in ("ours", "intelhex", "bincopy")
            )
            ratios = "".join(f"{results[lib][op] / ours:11.1f}x" for lib in ("intelhex", "bincopy"))
            print(f"{size // 1024:>6} KiB {op:<12}{cells}{ratios}")
    print("\nour peak memory (tracemalloc; input text / image allocated before measuring):")
    for size, _ in sizes:
        print(memory_row(size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
