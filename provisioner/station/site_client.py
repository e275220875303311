"""The station's HTTPS client for the site API: mTLS, timeouts, idempotent retries, refusals."""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import httpx
from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ValidationError

from provisioner import wire
from provisioner.errors import SiteBusy, SiteProtocolError, SiteUnreachable

_Model = TypeVar("_Model", bound=BaseModel)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRIES = 3
RETRY_BACKOFF_S = 0.2


def build_ssl_context(
    ca_cert_pem: bytes, client_cert_pem: bytes, key_pem: bytearray
) -> ssl.SSLContext:
    """Return a TLS ≥1.2 client context trusting only the site CA and presenting our certificate.

    The standard library loads keys from files only. The key is therefore re-encrypted under a
    random 32-byte password that lives in this process's memory, written with the certificate
    to a 0600 file in a private 0700 directory, loaded, and the file removed at once: the key
    never rests on disk in plaintext. ``key_pem`` is not modified; the caller wipes it.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_cert_pem.decode())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    password = bytearray(secrets.token_bytes(32).hex().encode())
    key = serialization.load_pem_private_key(bytes(key_pem), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(bytes(password)),
    )
    with tempfile.TemporaryDirectory(prefix="provisioner-tls-") as private_dir:
        path = Path(private_dir) / "client.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(client_cert_pem + b"\n" + encrypted)
        try:
            context.load_cert_chain(path, password=bytes(password))
        finally:
            path.unlink()
            password[:] = bytes(len(password))
    return context


class SiteClient:
    """Calls the site API over mTLS; thread-safe (httpx clients are).

    Idempotent calls (reads, grants and completions that carry a ``request_id``) are retried on
    transport failures with the same body; sign-in is retried only when nothing was sent.
    Problem documents become their typed ``Refused`` subclass carrying the site's detail.
    """

    def __init__(
        self,
        base_url: str,
        ssl_context: ssl.SSLContext,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self._client = httpx.Client(
            base_url=self.base_url,
            verify=ssl_context,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )
        self._token_lock = threading.Lock()
        self._token: str | None = None

    # --- API ---------------------------------------------------------------------------

    def sign_in(self, operator_id: str, pin: str) -> wire.SessionResponse:
        """Open an operator session; later calls carry its bearer token."""
        body = wire.SessionRequest(operator_id=operator_id, pin=pin)
        answer = self._call("POST", "/session", body, wire.SessionResponse, idempotent=False)
        with self._token_lock:
            self._token = answer.session_token
        return answer

    def confirm_enrolment(
        self, request: wire.EnrolmentConfirmation
    ) -> wire.EnrolmentConfirmed:
        """Consume this station's one-time enrolment; a retry with the same id is harmless."""
        return self._call("POST", "/enrolment", request, wire.EnrolmentConfirmed,
                          idempotent=True)

    def health(self) -> wire.Health:
        """Return the site's liveness answer."""
        return self._call("GET", "/health", None, wire.Health, idempotent=True)

    def list_orders(self) -> list[wire.OrderSummary]:
        """Return the open orders this station may serve."""
        return self._call("GET", "/orders", None, wire.OrderList, idempotent=True).orders

    def request_grant(self, order_id: str, request: wire.GrantRequest) -> wire.GrantResponse:
        """Ask for a grant; retrying with the same ``request_id`` returns the same grant."""
        path = f"/orders/{order_id}/grants"
        return self._call("POST", path, request, wire.GrantResponse, idempotent=True)

    def complete(self, grant_id: str, request: wire.CompleteRequest) -> wire.CompleteResponse:
        """Report a grant's outcome; retrying with the same ``request_id`` is harmless."""
        path = f"/grants/{grant_id}/complete"
        return self._call("POST", path, request, wire.CompleteResponse, idempotent=True)

    def raise_alarm(self, alarm: wire.StationAlarm) -> wire.AlarmRecorded:
        """Have the site audit an alarm this station found (no operator session needed)."""
        return self._call("POST", "/alarms", alarm, wire.AlarmRecorded, idempotent=False)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # --- plumbing ----------------------------------------------------------------------

    def _headers(self) -> Mapping[str, str]:
        with self._token_lock:
            token = self._token
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def _call(
        self,
        method: str,
        path: str,
        body: BaseModel | None,
        answer_type: type[_Model],
        *,
        idempotent: bool,
    ) -> _Model:
        url = f"{wire.API_PREFIX}{path}"
        content = None if body is None else body.model_dump_json().encode()
        headers = dict(self._headers())
        if content is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.request(method, url, content=content, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure: httpx.HTTPError = exc  # nothing reached the site: always safe to retry
            except httpx.TransportError as exc:
                if not idempotent:
                    raise SiteUnreachable(self.base_url, _reason(exc)) from exc
                failure = exc
            else:
                try:
                    return _decode(response, answer_type)
                except SiteBusy:
                    if not idempotent or attempt > self._retries:
                        raise
                    time.sleep(RETRY_BACKOFF_S * attempt)
                    continue
            if attempt > self._retries:
                raise SiteUnreachable(self.base_url, _reason(failure)) from failure
            time.sleep(RETRY_BACKOFF_S * attempt)


def _reason(exc: httpx.HTTPError) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _decode(response: httpx.Response, answer_type: type[_Model]) -> _Model:
    """Return the parsed answer or raise the refusal its problem document names."""
    if response.is_success:
        try:
            return answer_type.model_validate_json(response.content)
        except ValidationError as exc:
            first = exc.errors()[0]  # names the field, never the value
            where = ".".join(str(part) for part in first["loc"]) or "answer"
            raise SiteProtocolError(
                response.status_code, f"{answer_type.__name__} expected: {where}: "
                f"{first['msg']} ({exc.error_count()} errors)",
            ) from exc
    try:
        problem = wire.Problem.model_validate_json(response.content)
    except ValidationError as exc:
        raise SiteProtocolError(response.status_code, response.text[:200]) from exc
    raise wire.refusal_from_problem(problem)
