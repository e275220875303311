"""`site serve` says where it listens, logs one line per request (no secrets) and when it stops."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx

from provisioner.site import admin
from provisioner.site.sitedir import SiteDir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_prints_listening_access_lines_and_stopped(tmp_path: Path) -> None:
    site_dir = tmp_path / "site"
    admin.init_site(site_dir, hosts=("127.0.0.1",))
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "provisioner.cli", "site", "--site-dir", str(site_dir),
         "serve", "--port", str(port)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stderr is not None
        first = server.stderr.readline()
        assert f"listening on https://127.0.0.1:{port}" in first, first
        with httpx.Client(base_url=f"https://127.0.0.1:{port}",
                          verify=ssl.create_default_context(
                              cafile=str(SiteDir(site_dir).ca_cert))) as http:
            assert http.get("/v1/health").status_code == 200
            refused = http.get("/v1/orders", headers={"Authorization": "Bearer TOKEN-1234567"})
            assert refused.status_code == 403
    finally:
        server.send_signal(signal.SIGINT)
        _, rest = server.communicate(timeout=30)
    lines = [line.split(" ", 2)[2] for line in rest.strip().splitlines()]
    assert lines[0].endswith('"GET /v1/health HTTP/1.1" 200 OK'), lines
    assert lines[1].endswith('"GET /v1/orders HTTP/1.1" 403 Forbidden'), lines
    assert lines[-2:] == ["shutting down", "stopped"]
    assert len(lines) == 4, lines
    assert "TOKEN-1234567" not in rest
    assert server.returncode == 0
