"""Serve the site over TLS with uvicorn: blocking (`site serve`) or in a thread (tests, demo)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from provisioner.errors import ProvisionerError
from provisioner.hsm.pin import PinPrompt
from provisioner.process import disable_core_dumps
from provisioner.site.app import GRANT_QUEUE, UPDATE_RATE_PER_S, create_app, create_update_app
from provisioner.site.context import Clock, SiteContext, open_site, utc_now
from provisioner.site.keyprovider.setup import check_site_keys
from provisioner.site.serve_log import log_config
from provisioner.site.sitedir import SiteDir
from provisioner.site.tls import TlsHttpToolsProtocol, harden

_START_TIMEOUT_S = 20.0


class SiteServerError(ProvisionerError):
    """The in-process site server did not start."""


def _config(app: FastAPI, paths: SiteDir, host: str, port: int, *,
            client_certs: bool = True, logged: bool = False) -> uvicorn.Config:
    """uvicorn settings of a listener: the station API asks for client certificates, the
    update listener (devices and technicians have none) does not. ``logged`` (`site serve`)
    prints where it listens, one access line per request and when it stops (``serve_log``)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=TlsHttpToolsProtocol,
        ssl_certfile=str(paths.server_cert),
        ssl_keyfile=str(paths.server_key),
        ssl_ca_certs=str(paths.ca_cert) if client_certs else None,
        ssl_cert_reqs=ssl.CERT_OPTIONAL if client_certs else ssl.CERT_NONE,
        ssl_context_factory=harden,
        log_level="info" if logged else "warning",
        log_config=log_config() if logged else None,
        access_log=logged,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=10,
    )


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_listeners(site_dir: Path, db_url: str | None, host: str,
                     station_sock: socket.socket, update_sock: socket.socket | None,
                     update_rate_per_s: float = UPDATE_RATE_PER_S,
                     announce: bool = True) -> None:
    """One process serving the station API (and the update listener) on inherited sockets."""
    paths = SiteDir(site_dir)
    ctx = open_site(site_dir, db_url=db_url)
    servers = [(uvicorn.Server(_config(create_app(ctx), paths, host,
                                       int(station_sock.getsockname()[1]), logged=True)),
                station_sock)]
    if update_sock is not None:
        app = create_update_app(ctx, rate_per_s=update_rate_per_s,
                                burst=max(1, int(2 * update_rate_per_s)))
        servers.append((uvicorn.Server(_config(
            app, paths, host, int(update_sock.getsockname()[1]),
            client_certs=False, logged=True)), update_sock))

    if announce:
        # uvicorn stays silent about sockets handed to it; say where we listen (serve_log).
        for _server, sock in servers:
            logging.getLogger("uvicorn.error").info(
                "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)", "https", host,
                int(sock.getsockname()[1]))

    async def main() -> None:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the SIGINT it handled once the servers have stopped
    finally:
        ctx.close()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(
    site_dir: Path, *, host: str = "127.0.0.1", port: int = 8443, update_port: int | None = None,
    workers: int = 1, db_url: str | None = None, update_rate_per_s: float = UPDATE_RATE_PER_S,
    pin_prompt: PinPrompt | None = None,
) -> None:
    """Run the station API (and the update listener on ``update_port``) until interrupted;
    ``workers`` > 1 spawns worker processes sharing the listening sockets.

    Prints "listening on https://HOST:PORT", one access line per request and "stopped" on
    stderr (``serve_log``). A token site is opened here once to check module, token, PIN and
    keys; each worker then opens the token itself (the PIN reaches workers as
    ``$PROVISIONER_PKCS11_PIN`` when it was typed at the prompt). Core dumps are disabled
    first (the process holds the master key); workers inherit it.
    """
    disable_core_dumps()
    paths = SiteDir(site_dir.resolve())
    paths.read_settings()
    check_site_keys(paths.root, pin_prompt)
    station_sock = _bind(host, port)
    update_sock = None if update_port is None else _bind(host, update_port)
    if workers == 1:
        _serve_listeners(paths.root, db_url, host, station_sock, update_sock, update_rate_per_s)
        return
    # `kill PID` (SIGTERM) of the parent stops the workers too (they are not its process group).
    signal.signal(signal.SIGTERM, _interrupt)
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_serve_listeners, name=f"site-worker-{n}",
                               args=(paths.root, db_url, host, station_sock, update_sock,
                                     update_rate_per_s, n == 0))
                 for n in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
            process.join(timeout=_START_TIMEOUT_S)


@dataclass
class SiteServer:
    """A site served in a background thread; ``url`` is its https base URL."""

    url: str
    port: int
    context: SiteContext
    app: FastAPI
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving, wait for the thread and close the site."""
        self._server.should_exit = True
        self._thread.join(timeout=_START_TIMEOUT_S)
        self.context.close()


def run_in_thread(
    site_dir: Path, host: str = "127.0.0.1", port: int = 0, *, clock: Clock = utc_now,
    db_url: str | None = None, updates: bool = False, rate_per_s: float | None = None,
    grant_queue: int = GRANT_QUEUE,
) -> SiteServer:
    """Serve the site in this process on a background thread (port 0: pick a free port).

    ``updates`` serves the update listener instead of the station API (``rate_per_s``
    overrides its per-source rate limit, burst twice that); ``grant_queue`` bounds the grant
    requests in progress (``create_app``).
    """
    paths = SiteDir(site_dir)
    ctx = open_site(site_dir, clock=clock, db_url=db_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = int(sock.getsockname()[1])
    if updates:
        app = (create_update_app(ctx) if rate_per_s is None
               else create_update_app(ctx, rate_per_s=rate_per_s, burst=int(2 * rate_per_s)))
        config = _config(app, paths, host, bound_port, client_certs=False)
    else:
        app = create_app(ctx, grant_queue=grant_queue)
        config = _config(app, paths, host, bound_port)
    server = uvicorn.Server(config)
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
    return SiteServer(f"https://{host}:{bound_port}", bound_port, ctx, app, server, thread)
