"""A TCP forwarder that loses the site's answer: the request reaches the site, the answer is
cut once it has started (TLS passes through untouched; the site committed before answering)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# More than a TLS handshake's server flight, less than an answer carrying a package.
CUT_AFTER_BYTES = 8 * 1024


@dataclass
class LossyProxy:
    """Forward 127.0.0.1:port to the site; cut the answer of the first ``lose`` connections."""

    upstream: tuple[str, int]
    lose: int
    port: int = 0
    lost: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        """The proxy's https URL (the site's certificate names 127.0.0.1)."""
        return f"https://127.0.0.1:{self.port}"

    def _take_loss(self) -> bool:
        with self._lock:
            if self.lost < self.lose:
                self.lost += 1
                return True
            return False

    def serve(self, listener: socket.socket) -> None:
        """Accept until the listener closes."""
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client: socket.socket) -> None:
        lossy = self._take_loss()
        upstream = socket.create_connection(self.upstream)
        threading.Thread(target=_pump, args=(client, upstream, None), daemon=True).start()
        _pump(upstream, client, CUT_AFTER_BYTES if lossy else None)
        for end in (client, upstream):
            end.close()


def _pump(source: socket.socket, sink: socket.socket, cut_after: int | None) -> None:
    """Copy bytes until either end closes (or ``cut_after`` bytes went through)."""
    sent = 0
    try:
        while cut_after is None or sent < cut_after:
            data = source.recv(4096 if cut_after is None else min(4096, cut_after - sent))
            if not data:
                break
            sink.sendall(data)
            sent += len(data)
    except OSError:
        pass
    for end in (source, sink):
        with suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)


@contextmanager
def lossy_proxy(site_url: str, lose: int = 1) -> Iterator[LossyProxy]:
    """Serve a lossy forwarder in front of ``site_url`` for the duration of the block."""
    parts = urlsplit(site_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = LossyProxy((parts.hostname, parts.port), lose)
    listener = socket.create_server(("127.0.0.1", 0))
    proxy.port = listener.getsockname()[1]
    thread = threading.Thread(target=proxy.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        listener.close()
        thread.join(timeout=10)
