"""The server-edge TLS pieces: the ASGI TLS extension and the hardened context."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from provisioner.site import keys
from provisioner.site.tls import (
    TlsHttpToolsProtocol,
    harden,
    peer_cert_pem,
    tls_extension,
)


class _PlainTransport(asyncio.Transport):
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def test_plain_tcp_has_no_tls_extension() -> None:
    assert tls_extension(_PlainTransport()) is None


def test_scope_without_extension_has_no_peer() -> None:
    assert peer_cert_pem({"type": "http"}) is None
    assert peer_cert_pem({"extensions": {"tls": {"client_cert_chain": []}}}) is None


class _PeerSsl(ssl.SSLObject):
    """A handshaken SSL object's answers, without a handshake (SSLObject has no constructor)."""

    def __init__(self, der: bytes) -> None:  # no super().__init__(): SSLObject refuses it
        self.der = der

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self.der

    def cipher(self) -> tuple[str, str, int]:
        return ("TLS_AES_256_GCM_SHA384", "TLSv1.3", 256)

    def version(self) -> str:
        return "TLSv1.3"


class _TlsTransport(asyncio.Transport):
    def __init__(self, der: bytes) -> None:
        super().__init__()
        self._extra = {"ssl_object": _PeerSsl(der), "sslcontext": object(),
                       "peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8443)}
        self.written = bytearray()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return False


def test_every_request_on_a_connection_carries_its_tls_extension() -> None:
    der = b"0\x03\x02\x01\x00"  # any bytes: the protocol only re-encodes them as PEM
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def two_requests() -> None:
        config = uvicorn.Config(app, http=TlsHttpToolsProtocol, log_config=None)
        config.load()
        protocol = TlsHttpToolsProtocol(config, ServerState(), {})
        protocol.connection_made(_TlsTransport(der))
        for path in (b"/first", b"/second"):  # one keep-alive connection
            protocol.data_received(b"GET " + path + b" HTTP/1.1\r\nhost: site\r\n\r\n")
            while len(seen) < (1 if path == b"/first" else 2) or protocol.cycle.more_body:
                await asyncio.sleep(0)
            await asyncio.sleep(0)

    asyncio.run(two_requests())
    assert [scope["path"] for scope in seen] == ["/first", "/second"]
    for scope in seen:
        assert scope["extensions"]["tls"]["tls_version"] == 0x0304
        assert scope["extensions"]["tls"]["cipher_name"] == "TLS_AES_256_GCM_SHA384"
        assert peer_cert_pem(scope) == ssl.DER_cert_to_PEM_cert(der)


def _pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    now = datetime.now(UTC)
    ca = keys.create_ca("unit", now)
    server = keys.issue_server_cert(ca, "unit", ["site.example", "10.0.0.7"], now)
    paths = (tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem")
    paths[0].write_bytes(server.cert_pem)
    paths[1].write_bytes(bytes(server.key_pem.reveal()))
    paths[2].write_bytes(ca.cert_pem)
    return paths


def test_server_context_is_tls12_plus_with_optional_verified_client_certs(tmp_path: Path) -> None:
    cert, key, ca = _pki(tmp_path)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    config = uvicorn.Config(app, ssl_certfile=str(cert), ssl_keyfile=str(key),
                            ssl_ca_certs=str(ca), ssl_cert_reqs=ssl.CERT_OPTIONAL,
                            ssl_context_factory=harden, http=TlsHttpToolsProtocol)
    config.load()
    assert config.ssl is not None
    assert config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    assert config.ssl.verify_mode == ssl.CERT_OPTIONAL
    assert config.http_protocol_class is TlsHttpToolsProtocol


def test_server_certificate_names_localhost_loopback_and_extra_hosts(tmp_path: Path) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(_pki(tmp_path)[0].read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "site.example"}
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1", "10.0.0.7"}


def test_master_key_with_loose_mode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    keys.create_master_key(path)
    assert keys.load_master_key(path).__len__() == 32
    path.chmod(0o644)
    with pytest.raises(keys.SiteKeyError, match="0644"):
        keys.load_master_key(path)
