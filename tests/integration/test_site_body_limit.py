"""Issue 11 §2 as the attack: a 256 MiB body streamed at the site, with and without a certificate.

The site runs as `provisioner site serve` in its own process, so its memory is measured alone
(/proc/<pid>/status: resident set before, high-water mark after). Before the fix the body was
read before the certificate was checked and the site grew by ~741 MiB before answering 403.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from site_fixtures import (
    SiteSetup,
    build_site,
    free_port,
    request_head,
    sign_in,
    stream_body,
    tls_context,
    wait_until_serving,
)

ATTACK_BYTES = 256 * 2**20
MEMORY_BOUND_BYTES = 48 * 2**20


@dataclass
class Served:
    setup: SiteSetup
    url: str
    port: int
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("site")
    setup = build_site(root)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from provisioner.cli import main; main()", "site",
         "--site-dir", str(root), "serve", "--port", str(port)],
    )
    url = f"https://127.0.0.1:{port}"
    wait_until_serving(url, setup.ca_path, process)
    yield Served(setup, url, port, process)
    process.terminate()
    process.wait(timeout=30)


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_anonymous_256_mib_body_is_refused_before_it_is_read(
    served: Served, chunked: bool,
) -> None:
    pid = served.process.pid
    before = _status_bytes(pid, "VmRSS")
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % (
        ATTACK_BYTES)
    answer = stream_body(served.port, tls_context(served.setup.ca_path, None),
                         request_head("/v1/orders/o-test/grants", framing), ATTACK_BYTES,
                         chunked=chunked)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    # The site closes on an anonymous caller with its upload unread: the reset that close
    # sends may overtake the answer's body (its own TLS record after the head's), so the
    # body is checked when it arrived (test_site_tls_flow checks it for a small request).
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head
    assert not body or b'"code":"station_inactive"' in body, body[:200]
    grown = _status_bytes(pid, "VmHWM") - before
    assert grown < MEMORY_BOUND_BYTES, f"site grew by {grown / 2**20:.0f} MiB"


def test_a_station_cannot_stream_past_the_body_limit(served: Served) -> None:
    station = served.setup.stations["ST-1"]
    context = tls_context(served.setup.ca_path, station)
    with httpx.Client(base_url=served.url, verify=context, timeout=30) as http:
        auth = sign_in(http)["Authorization"].encode()
    pid = served.process.pid
    before = _status_bytes(pid, "VmRSS")
    head = request_head("/v1/orders/o-test/grants",
                 b"Authorization: " + auth + b"\r\nTransfer-Encoding: chunked\r\n")
    answer = stream_body(served.port, context, head, ATTACK_BYTES, chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"code":"body_too_large"' in answer
    grown = _status_bytes(pid, "VmHWM") - before
    assert grown < MEMORY_BOUND_BYTES, f"site grew by {grown / 2**20:.0f} MiB"
    declared = stream_body(served.port, context, request_head(
        "/v1/orders/o-test/grants", b"Authorization: " + auth + b"\r\nContent-Length: %d\r\n"
        % ATTACK_BYTES), ATTACK_BYTES, chunked=False)
    assert declared.startswith(b"HTTP/1.1 413"), declared[:200]


def test_the_site_process_has_core_dumps_off(served: Served) -> None:
    limits = Path(f"/proc/{served.process.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core
