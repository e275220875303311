"""Release management: store a signed, wrapped update image; load it with its signature checked."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from hex_generator import load
from provisioner.audit.chain import AuditEvent
from provisioner.crypto.secret import Secret
from provisioner.errors import BadSignature, DecryptError, InvalidRequest, ReleaseInvalid
from provisioner.site.admin import ADMIN
from provisioner.site.context import SiteContext, release_aad
from provisioner.site.db import repo
from provisioner.site.db.engine import transaction
from provisioner.site.db.models import Release
from provisioner.site.updates.packaging import ReleaseTerms
from provisioner.update.versions import format_version, parse_version

_BINARY_SUFFIXES = (".bin", ".img")


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """A stored release (no image bytes)."""

    release_id: str
    product: str
    version: str
    requires_version: str | None
    min_version: str | None
    image_size: int
    image_sha512: str


def release_manifest(product: str, terms: ReleaseTerms, image_size: int, sha512: str) -> bytes:
    """Return the canonical bytes the manufacturer key signs for a release."""
    return json.dumps(
        {"kind": "release", "product": product, "version": terms.version,
         "requires_version": terms.requires_version, "security_counter": terms.security_counter,
         "image_size": image_size, "image_sha512": sha512},
        sort_keys=True, separators=(",", ":"),
    ).encode()


def read_image(path: Path) -> bytearray:
    """Return an update image as flat bytes: raw for .bin/.img, else Intel HEX / S-record.

    A hex file's image runs from its lowest to its highest address, gaps at the fill byte.
    """
    if path.suffix.lower() in _BINARY_SUFFIXES:
        return bytearray(path.read_bytes())
    image = load(path)
    try:
        start, end = image.min_address, image.max_address
        return image.read(start, end - start, fill_byte=0xFF)
    finally:
        image.wipe()


def _info(row: Release) -> ReleaseInfo:
    return ReleaseInfo(
        row.release_id, row.product, format_version(row.version),
        format_version(row.requires_version) if row.requires_version else None,
        format_version(row.security_counter) if row.security_counter else None,
        row.image_size, row.image_sha512,
    )


def add_release(ctx: SiteContext, path: Path, *, product: str, version: str,
                requires: str | None = None, min_version: str | None = None) -> ReleaseInfo:
    """Store an update image for ``product``: wrapped, digested, signed by the manufacturer key.

    ``requires`` is the version a device must run before it gets this one (predecessor);
    ``min_version`` the anti-rollback floor the device adopts after installing it.
    """
    terms = ReleaseTerms(parse_version(version), parse_version(requires) if requires else 0,
                         parse_version(min_version) if min_version else 0)
    if terms.requires_version >= terms.version or terms.security_counter > terms.version:
        raise InvalidRequest("--requires must be below --version and --min-version at most it")
    image = read_image(path)
    if not image:
        raise InvalidRequest(f"{path}: the update image is empty")
    try:
        sha512 = hashlib.sha512(image).hexdigest()
        release_id = f"rel-{secrets.token_hex(8)}"
        signature = ctx.signer.sign(release_manifest(product, terms, len(image), sha512)).hex()
        row = Release(
            release_id=release_id, product=product, version=terms.version,
            requires_version=terms.requires_version, security_counter=terms.security_counter,
            image_size=len(image), image_sha512=sha512, signature=signature,
            key_id=ctx.signer.key_id, created_at=ctx.clock(),
            wrapped_image=ctx.keys.wrap(bytes(image), release_aad(release_id)),
        )
    finally:
        image[:] = bytes(len(image))
    with transaction(ctx.factory) as session:
        if session.scalars(select(Release).where(Release.product == product,
                                                 Release.version == terms.version)).first():
            raise InvalidRequest(f"release {product} {version} is already stored")
        session.add(row)
        session.flush()
        repo.append_audit(session, signer=ctx.signer, now=ctx.clock(), actor=ADMIN,
                          event=AuditEvent.release_added,
                          data={"release_id": release_id, "product": product,
                                "version": format_version(terms.version),
                                "requires_version": requires, "min_version": min_version,
                                "image_size": row.image_size, "image_sha512": sha512})
    return _info(row)


def list_releases(ctx: SiteContext, product: str | None = None) -> list[ReleaseInfo]:
    """Return stored releases, by product and version."""
    with ctx.factory() as session:
        query = select(Release).order_by(Release.product, Release.version)
        if product is not None:
            query = query.where(Release.product == product)
        return [_info(row) for row in session.scalars(query)]


@dataclass(frozen=True, slots=True)
class StoredRelease:
    """A release row's signed fields, without its image (what every request reads)."""

    release_id: str
    product: str
    version: int
    requires_version: int
    security_counter: int
    image_size: int
    image_sha512: str
    signature: str

    @property
    def terms(self) -> ReleaseTerms:
        """The signed numbers that go into every manifest for this release."""
        return ReleaseTerms(self.version, self.requires_version, self.security_counter)


_STORED = (Release.release_id, Release.product, Release.version, Release.requires_version,
           Release.security_counter, Release.image_size, Release.image_sha512,
           Release.signature)


_NEWEST = (select(*_STORED).where(Release.product == bindparam("product"))
           .order_by(Release.version.desc()).limit(1))


def newest_release(connection: Connection, product: str) -> StoredRelease | None:
    """The release of ``product`` with the highest version (one statement, no image)."""
    row = connection.execute(_NEWEST, {"product": product}).first()
    return None if row is None else StoredRelease(*row)


def stored_release(connection: Connection, release_id: str) -> StoredRelease | None:
    """The release ``release_id`` (no image)."""
    row = connection.execute(select(*_STORED).where(Release.release_id == release_id)).first()
    return None if row is None else StoredRelease(*row)


def wrapped_image(session: Session, release_id: str) -> bytes:
    """The wrapped image of a release (read once per process: the image cache keeps it)."""
    blob = session.scalar(select(Release.wrapped_image).where(Release.release_id == release_id))
    return b"" if blob is None else blob


def verify_release(ctx: SiteContext, row: StoredRelease) -> None:
    """Check the manufacturer signature over a release row's terms and digest.

    Raises:
        ReleaseInvalid: the row was edited (terms, digest, size or signature).
    """
    try:
        ctx.signer.verify_key.verify(
            release_manifest(row.product, row.terms, row.image_size, row.image_sha512),
            bytes.fromhex(row.signature), f"release {row.release_id}")
    except (BadSignature, ValueError) as exc:
        raise ReleaseInvalid(f"release {row.release_id}: manufacturer signature does not "
                             "verify over the stored terms", release_id=row.release_id) from exc


def open_release(ctx: SiteContext, row: StoredRelease, wrapped: bytes) -> Secret:
    """Unwrap a release image after checking the manufacturer signature over its terms.

    Checked on every use, not only when stored: a row edited in the database (terms, digest,
    image) fails here.

    Raises:
        ReleaseInvalid: the signature does not cover the row's terms, or the image differs.
    """
    verify_release(ctx, row)
    try:
        image = ctx.keys.unwrap(wrapped, release_aad(row.release_id))
    except DecryptError as exc:
        raise ReleaseInvalid(f"release {row.release_id}: the wrapped image does not open",
                             release_id=row.release_id) from exc
    if hashlib.sha512(image.reveal()).hexdigest() != row.image_sha512:
        image.wipe()
        raise ReleaseInvalid(f"release {row.release_id}: image digest differs",
                             release_id=row.release_id)
    return image
