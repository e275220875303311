"""A `provisioner site serve` process for benchmarks: start it, wait for health, count its CPU."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil

from provisioner.site.sitedir import SiteDir


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(root: Path, serve_args: list[str], health_port: int,
            start_timeout_s: float = 60) -> Iterator[tuple[str, psutil.Process]]:
    """Run `site serve SERVE_ARGS` until the block ends; yield its URL on ``health_port``.

    The access log (one line per request) goes to /dev/null so it does not time the terminal.
    """
    command = [sys.executable, "-c", "from provisioner.cli import main; main()", "site",
               "--site-dir", str(root), "serve", *serve_args]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    url = f"https://127.0.0.1:{health_port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                httpx.get(f"{url}/v1/health", verify=str(SiteDir(root).ca_cert), timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("site server did not start") from None
                time.sleep(0.2)
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_s(process: psutil.Process) -> float:
    """User + system CPU seconds of the site process and its worker processes."""
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total
