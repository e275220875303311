"""Serve the site over TLS with uvicorn: blocking (`site serve`) or in a thread (tests, demo)."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from provisioner.errors import ProvisionerError
from provisioner.hsm.pin import PinPrompt
from provisioner.process import disable_core_dumps
from provisioner.site.app import create_app
from provisioner.site.context import Clock, SiteContext, open_site, utc_now
from provisioner.site.keyprovider.setup import check_site_keys
from provisioner.site.serve_log import log_config
from provisioner.site.sitedir import SiteDir
from provisioner.site.tls import TlsH11Protocol, harden

SITE_DIR_ENV = "PROVISIONER_SITE_DIR"
DB_URL_ENV = "PROVISIONER_SITE_DB_URL"
_START_TIMEOUT_S = 20.0


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: open the site named by the environment."""
    disable_core_dumps()
    db_url = os.environ.get(DB_URL_ENV) or None
    return create_app(open_site(Path(os.environ[SITE_DIR_ENV]), db_url=db_url))


class SiteServerError(ProvisionerError):
    """The in-process site server did not start."""


def _config(app: FastAPI, paths: SiteDir, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=TlsH11Protocol,
        ssl_certfile=str(paths.server_cert),
        ssl_keyfile=str(paths.server_key),
        ssl_ca_certs=str(paths.ca_cert),
        ssl_cert_reqs=ssl.CERT_OPTIONAL,
        ssl_context_factory=harden,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=10,
    )


def serve(
    site_dir: Path, *, host: str = "127.0.0.1", port: int = 8443, workers: int = 1,
    db_url: str | None = None, pin_prompt: PinPrompt | None = None,
) -> None:
    """Run the site until interrupted (``workers`` > 1 forks worker processes).

    Prints "listening on https://HOST:PORT", one access line per request and "stopped" on
    stderr (``serve_log``).

    A token site is opened here once to check module, token, PIN and keys; each worker
    then opens the token once itself (the PIN reaches workers as ``$PROVISIONER_PKCS11_PIN``
    when it was typed at the prompt).

    Core dumps are disabled first (the process holds the master key); workers inherit it.
    """
    disable_core_dumps()
    paths = SiteDir(site_dir.resolve())
    paths.read_settings()
    check_site_keys(paths.root, pin_prompt)
    os.environ[SITE_DIR_ENV] = str(paths.root)
    if db_url:
        os.environ[DB_URL_ENV] = db_url
    uvicorn.run(
        "provisioner.site.server:app_from_env", factory=True, host=host, port=port,
        workers=workers, http=TlsH11Protocol, ssl_certfile=str(paths.server_cert),
        ssl_keyfile=str(paths.server_key), ssl_ca_certs=str(paths.ca_cert),
        ssl_cert_reqs=ssl.CERT_OPTIONAL, ssl_context_factory=harden, log_level="info",
        log_config=log_config(), access_log=True, timeout_keep_alive=30,
    )


@dataclass
class SiteServer:
    """A site served in a background thread; ``url`` is its https base URL."""

    url: str
    port: int
    context: SiteContext
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving, wait for the thread and close the site."""
        self._server.should_exit = True
        self._thread.join(timeout=_START_TIMEOUT_S)
        self.context.close()


def run_in_thread(
    site_dir: Path, host: str = "127.0.0.1", port: int = 0, *, clock: Clock = utc_now,
    db_url: str | None = None,
) -> SiteServer:
    """Serve the site in this process on a background thread (port 0: pick a free port)."""
    paths = SiteDir(site_dir)
    ctx = open_site(site_dir, clock=clock, db_url=db_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = int(sock.getsockname()[1])
    server = uvicorn.Server(_config(create_app(ctx), paths, host, bound_port))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"site-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            ctx.close()
            raise SiteServerError(f"site server on {host}:{bound_port} did not start")
        time.sleep(0.01)
    return SiteServer(f"https://{host}:{bound_port}", bound_port, ctx, server, thread)
