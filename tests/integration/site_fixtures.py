"""Shared helpers for the site integration tests: PostgreSQL databases and ready-made sites."""

from __future__ import annotations

import contextlib
import secrets
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from provisioner.crypto.bundle import EnrolmentBundle, open_bundle
from provisioner.crypto.secret import Secret
from provisioner.site import admin, catalogue
from provisioner.site.confirmation import confirm_enrolment
from provisioner.site.context import SiteContext, open_site
from provisioner.site.keyprovider.config import TokenConfig
from provisioner.site.sitedir import SiteDir
from provisioner.wire import EnrolmentConfirmation

PG_SERVER = "127.0.0.1:5432"
PG_ADMIN_DSN = f"postgresql://postgres@{PG_SERVER}/test"


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create a uniquely named PostgreSQL database, yield its SQLAlchemy URL, drop it after.

    Skips the test, saying why, when the server at 127.0.0.1:5432 does not answer.
    """
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG_SERVER} (user postgres, db test) not reachable: {exc}")
    name = f"site_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql+psycopg://postgres@{PG_SERVER}/{name}"
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def _sqlite_default() -> Iterator[str | None]:
    yield None  # the site's own SQLite file


# The database URL each engine under test gives ``build_site``: tests parametrised over both.
DATABASES: dict[str, Callable[[], AbstractContextManager[str | None]]] = {
    "sqlite": _sqlite_default, "postgresql": postgres_database}


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, ca_path: Path, process: subprocess.Popen[bytes]) -> None:
    """Wait (at most 60 s) until a `site serve` process answers /v1/health at ``url``."""
    deadline = time.monotonic() + 60
    with httpx.Client(verify=tls_context(ca_path, None), timeout=5) as http:
        while True:
            try:
                if http.get(f"{url}/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert process.poll() is None, "site serve exited"
            assert time.monotonic() < deadline, "site serve did not start"
            time.sleep(0.2)


# --- ready-made sites -----------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
PROFILE = "stm32f103c8"
PRODUCT = "widget"
OPERATOR = "alice"
PIN = "4711-2342"
TEST_SCRYPT_N = 2**10  # bundles in tests: cheap to open; production default is 2**15


@dataclass
class EnrolledStation:
    """A station's credentials as a test (playing the station) holds them."""

    station_id: str
    cert_path: Path
    key_path: Path
    bundle: EnrolmentBundle


@dataclass
class SiteSetup:
    """An initialised site with operators, stations, firmware and one order."""

    root: Path
    ca_path: Path
    order_id: str
    stations: dict[str, EnrolledStation] = field(default_factory=dict)


def fingerprint_of(ctx: SiteContext, station_id: str) -> str:
    """The SHA-256 of ``station_id``'s certificate, as the gate hands it to a grant."""
    return next(info.cert_fingerprint for info in admin.list_stations(ctx)
                if info.station_id == station_id)


def enrol(ctx: SiteContext, root: Path, station_id: str, work: Path) -> EnrolledStation:
    """Enrol a station, open its bundle the way the station will and confirm it at the site.

    (The station's own confirmation call over mTLS is tested in ``test_station_enrolment``.)
    """
    enrolment = admin.add_station(ctx, root, station_id, "https://127.0.0.1",
                                  scrypt_n=TEST_SCRYPT_N)
    bundle = open_bundle(enrolment.bundle_path.read_bytes(), enrolment.passphrase)
    assert bundle.station_id == station_id
    cert_path = work / f"{station_id}.pem"
    key_path = work / f"{station_id}.key"
    cert_path.write_bytes(bundle.client_cert_pem)
    key_path.write_bytes(bytes(bundle.client_key_pem.reveal()))
    key_path.chmod(0o600)
    confirm_enrolment(ctx, station_id, EnrolmentConfirmation(request_id=f"enrol-{station_id}"))
    return EnrolledStation(station_id, cert_path, key_path, bundle)


def build_site(
    root: Path, *, db_url: str | None = None, stations: int = 1, quantity: int = 5,
    application: bool = False, token: TokenConfig | None = None, pin: Secret | None = None,
) -> SiteSetup:
    """Initialise a site at ``root`` with stations ST-1…ST-n, operator alice and one order
    (keys on the PKCS#11 ``token`` when given, else key files)."""
    admin.init_site(root, site_name="test-site", db_url=db_url, token=token, pin=pin)
    work = root / "station-side"
    work.mkdir()
    ctx = open_site(root, pin=pin)
    try:
        admin.add_operator(ctx, OPERATOR, PIN)
        enrolled = {}
        for n in range(1, stations + 1):
            station = enrol(ctx, root, f"ST-{n}", work)
            enrolled[station.station_id] = station
        fixtures = REPO / "fixtures" / PROFILE
        catalogue.add_firmware(ctx, fixtures / "bootloader.hex",
                               kind=catalogue.FirmwareKind.bootloader_template,
                               product=PRODUCT, version="1.0", profile=PROFILE)
        if application:
            catalogue.add_firmware(ctx, fixtures / "application.hex",
                                   kind=catalogue.FirmwareKind.application,
                                   product=PRODUCT, version="1.0")
        order_id = catalogue.create_order(
            ctx, product=PRODUCT, profile=PROFILE, quantity=quantity, bootloader="1.0",
            application="1.0" if application else None, order_id="o-test",
        )
    finally:
        ctx.close()
    return SiteSetup(root, SiteDir(root).ca_cert, order_id, enrolled)


@contextmanager
def opened_site(database: str, root: Path, *, quantity: int = 5) -> Iterator[SiteContext]:
    """Build a site on ``database`` (a key of ``DATABASES``) and yield it opened."""
    with DATABASES[database]() as db_url:
        build_site(root, db_url=db_url, quantity=quantity)
        site = open_site(root)
        try:
            yield site
        finally:
            site.close()


def tls_context(ca_path: Path, station: EnrolledStation | None) -> ssl.SSLContext:
    """A client context trusting the site CA, presenting the station's certificate if given."""
    context = ssl.create_default_context(cafile=str(ca_path))
    if station is not None:
        context.load_cert_chain(str(station.cert_path), str(station.key_path))
    return context


def client(url: str, ca_path: Path, station: EnrolledStation | None) -> httpx.Client:
    """An HTTPS client for the site, as a station (or anonymous)."""
    return httpx.Client(base_url=url, verify=tls_context(ca_path, station), timeout=30.0)


def sign_in(http: httpx.Client) -> dict[str, str]:
    """Sign alice in; return the Authorization header."""
    answer = http.post("/v1/session", json={"operator_id": OPERATOR, "pin": PIN})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['session_token']}"}


def grant_body(chip_uid: str, drbg_index: int, request_id: str | None = None) -> dict[str, object]:
    """A grant request body."""
    return {"request_id": request_id or f"req-{secrets.token_hex(8)}", "chip_uid": chip_uid,
            "drbg_index": drbg_index}


_CHUNK = b"0" * 4096


def stream_body(
    port: int, context: ssl.SSLContext, head: bytes, body_bytes: int, *, chunked: bool
) -> bytes:
    """Send ``head`` then up to ``body_bytes`` of zeros, stopping at the site's answer.

    Sends small frames only while the socket is writable and no answer is readable, so a
    write never blocks half-way through a TLS record; stops when the site answers, closes or
    stops reading for 10 s, then reads one complete answer and returns it raw.
    """
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    answer = b""
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(head)
        sent = 0
        with contextlib.suppress(OSError):  # the site closed the connection on us: good
            while sent < body_bytes:
                readable, writable, _ = select.select([tls], [tls], [], 10)
                if readable or tls.pending():
                    found = _read_now(tls)  # a TLS 1.3 session ticket is no answer
                    if found is not None:
                        answer = found
                        break
                if not writable:
                    break
                frame = (b"%x\r\n" % len(_CHUNK) + _CHUNK + b"\r\n") if chunked else _CHUNK
                tls.sendall(frame)
                sent += len(_CHUNK)
        with contextlib.suppress(OSError):
            while not _is_complete(answer) and (chunk := tls.recv(65536)):
                answer += chunk
    return answer


def _read_now(tls: ssl.SSLSocket) -> bytes | None:
    """Return application data already here (b"" if closed), or None if there is none."""
    tls.settimeout(0.0)
    try:
        return tls.recv(65536)
    except ssl.SSLWantReadError:
        return None
    finally:
        tls.settimeout(30.0)


def _is_complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def request_head(path: str, extra: bytes) -> bytes:
    """Return a raw POST request head for ``path``."""
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n" + extra + b"\r\n")
