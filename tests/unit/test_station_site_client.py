"""The station's site client: problem codes → typed refusals, retries, token, TLS key loading."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import ssl
import tempfile
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner import wire
from provisioner.errors import (
    IndexReused,
    Refused,
    SiteBusy,
    SiteProtocolError,
    SiteUnreachable,
    refusal_classes,
)
from provisioner.station import site_client
from provisioner.station.site_client import SiteClient, build_ssl_context

GRANT = wire.GrantRequest(request_id="req-0001", chip_uid="00aa11bb22cc", drbg_index=3)
# A grant answer without its firmware_encoding (as an older site sent it).
GRANT_ANSWER = {"grant_id": "g-1", "order_id": "o-1", "device_id": 7, "drbg_index": 3,
                "key_size_bytes": 16, "profile": "stm32f103c8", "profile_sha256": "0" * 64,
                "template": "", "expires_at": "2026-01-01T00:00:00Z"}


def _client(handler: httpx.MockTransport, retries: int = 2) -> SiteClient:
    return SiteClient("https://site.test", ssl.create_default_context(), retries=retries,
                      transport=handler)


def _problem(code: str, status: int = 409, **extra: object) -> httpx.Response:
    body = {"title": code, "status": status, "detail": f"because {code}", "code": code, **extra}
    return httpx.Response(status, content=json.dumps(body).encode(),
                          headers={"content-type": wire.PROBLEM_CONTENT_TYPE})


@pytest.mark.parametrize("code", sorted(refusal_classes()))
def test_every_problem_code_becomes_its_refusal_with_the_site_detail(
    code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(site_client, "RETRY_BACKOFF_S", 0.0)
    cls = refusal_classes()[code]
    client = _client(httpx.MockTransport(lambda request: _problem(code, expected_index=9)))
    with pytest.raises(Refused) as info:
        client.request_grant("o-1", GRANT)
    assert type(info.value) is cls
    assert info.value.detail == f"because {code}"
    if cls is IndexReused:
        assert info.value.expected == 9  # type: ignore[attr-defined]


def test_unknown_problem_code_keeps_its_name() -> None:
    client = _client(httpx.MockTransport(lambda request: _problem("brand_new_code")))
    with pytest.raises(Refused, match="brand_new_code"):
        client.list_orders()


def test_non_problem_error_and_unreadable_answer_are_protocol_errors() -> None:
    client = _client(httpx.MockTransport(lambda request: httpx.Response(502, text="bad gw")))
    with pytest.raises(SiteProtocolError) as info:
        client.list_orders()
    assert info.value.status == 502
    client = _client(httpx.MockTransport(lambda request: httpx.Response(200, json={"x": 1})))
    with pytest.raises(SiteProtocolError, match="OrderList expected"):
        client.list_orders()


def test_idempotent_calls_retry_with_the_same_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_client, "RETRY_BACKOFF_S", 0.0)
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(SiteUnreachable, match="ReadTimeout"):
        _client(httpx.MockTransport(handler), retries=2).request_grant("o-1", GRANT)
    assert len(bodies) == 3
    assert len(set(bodies)) == 1
    assert json.loads(bodies[0])["request_id"] == "req-0001"


def test_busy_site_is_retried_with_the_same_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_client, "RETRY_BACKOFF_S", 0.0)
    bodies: list[bytes] = []
    grant = {**GRANT_ANSWER, "firmware_encoding": "ihex+zlib"}

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if len(bodies) < 3:
            return _problem("site_unavailable", status=503)
        return httpx.Response(200, json=grant)

    answer = _client(httpx.MockTransport(handler), retries=2).request_grant("o-1", GRANT)
    assert answer.device_id == 7
    assert len(bodies) == 3
    assert len(set(bodies)) == 1


def test_a_grant_whose_firmware_encoding_this_station_does_not_read_is_named() -> None:
    older_site = GRANT_ANSWER  # before firmware_encoding: the envelope holds plain Intel HEX
    other = {**GRANT_ANSWER, "firmware_encoding": "ihex"}
    for answer, says in ((older_site, "firmware_encoding: Field required"),
                         (other, "firmware_encoding: Input should be 'ihex+zlib'")):
        client = _client(httpx.MockTransport(
            lambda request, answer=answer: httpx.Response(200, json=answer)))
        with pytest.raises(SiteProtocolError, match=re.escape(f"GrantResponse expected: {says}")):
            client.request_grant("o-1", GRANT)


def test_busy_site_is_not_retried_for_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_client, "RETRY_BACKOFF_S", 0.0)
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return _problem("site_unavailable", status=503)

    with pytest.raises(SiteBusy):
        _client(httpx.MockTransport(handler)).sign_in("op", "1234")
    assert len(calls) == 1


def test_sign_in_is_not_retried_after_a_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_client, "RETRY_BACKOFF_S", 0.0)
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(SiteUnreachable):
        _client(httpx.MockTransport(handler)).sign_in("op", "1234")
    assert len(calls) == 1


def test_connect_errors_are_retried_even_for_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(site_client, "RETRY_BACKOFF_S", 0.0)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) < 2:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"operator_id": "op", "session_token": "tok-1",
                                         "expires_at": "2030-01-01T00:00:00Z"})

    client = _client(httpx.MockTransport(handler))
    client.sign_in("op", "1234")
    assert calls == ["/v1/session", "/v1/session"]
    seen: list[str | None] = []

    def orders(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"orders": []})

    client._client._transport = httpx.MockTransport(orders)
    assert client.list_orders() == []
    assert seen == ["Bearer tok-1"]


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls_context_loads_the_key_without_leaving_a_file(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    cert_pem, key_pem = _self_signed()
    context = build_ssl_context(cert_pem, cert_pem, bytearray(key_pem))
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert os.listdir(tmp_path) == []
