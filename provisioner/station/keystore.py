"""The station's key stream, persisted past an index before that index's key ever exists.

Why a file of its own next to the sealed secrets: sealing costs one scrypt (n=2^15, 0.1-0.3 s
here, and it holds the GIL, stalling every other board), far above the 50 ms per-board budget.
So the sealed file is opened once at unlock, and its transport key yields (HKDF-SHA256, own
``info``) a data key that lives only in memory for the session. Before each key is derived,
the DRBG working state *past* that index is AES-GCM encrypted under that data key and written
atomically (0600, fsync, rename, fsync of the directory): about a millisecond.

* As strong as the passphrase: the data key is reachable only through the sealed file.
* An index is never reused after a crash: the state on disk is already past it.
* Forward secrecy holds at every instant: enrolment seals an *empty* DRBG state and writes the
  working state only here, so no older state survives anywhere once an index is used.
* Losing this file stops key derivation (fail-safe: the station must be re-enrolled).
* Each write also records the journal's chain head (``JournalHead``), so that a journal
  deleted or rolled back past the last key derivation is noticed at unlock.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from provisioner.crypto import envelope
from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.secret import Secret
from provisioner.errors import DecryptError, JournalError, StationConfigError
from provisioner.station.journal import EMPTY_HEAD, MAC_SIZE_BYTES, JournalHead

STATE_INFO = b"provisioner/station-keystream-state/v1"
MAX_JOURNAL_SKIP = 2**20  # DRBG steps (a few seconds) a journal may move the stream forward
_MAGIC = b"PKS2"  # key stream state + journal head
_OLD_MAGIC = b"PKS1"  # key stream state only
_HEAD = struct.Struct(f">Q{MAC_SIZE_BYTES}s")

JournalHeadSource = Callable[[], JournalHead]


def _aad(station_id: str, magic: bytes = _MAGIC) -> bytes:
    return magic + b"|" + station_id.encode()


def _no_journal() -> JournalHead:
    return EMPTY_HEAD


class KeyStore:
    """Forward-only key derivation with write-ahead persistence; thread-safe."""

    def __init__(
        self, path: Path, station_id: str, data_key: Secret, stream: KeyStream,
        journal_head: JournalHeadSource = _no_journal, recorded_head: JournalHead | None = None,
    ) -> None:
        self._path = path
        self._station_id = station_id
        self._data_key = data_key
        self._stream = stream
        self._journal_head = journal_head
        self.recorded_head = recorded_head  # the journal head the file held at unlock
        self._lock = threading.Lock()
        self._write(stream)

    @classmethod
    def create(cls, path: Path, station_id: str, transport_key: Secret, state: Secret
               ) -> KeyStore:
        """Write the first state file (at enrolment) from the bundle's working state."""
        stream = KeyStream.from_state(state)
        return cls(path, station_id, envelope.derive_key(transport_key, STATE_INFO), stream)

    @classmethod
    def unlock(
        cls,
        path: Path,
        station_id: str,
        transport_key: Secret,
        sealed_state: Secret | None = None,
        *,
        floor_index: int = 0,
        journal_head: JournalHeadSource = _no_journal,
    ) -> KeyStore:
        """Open the key stream from the state file (or a non-empty sealed state, if ahead).

        ``floor_index`` (from the journal) moves the stream forward to at least that index,
        by at most ``MAX_JOURNAL_SKIP``. ``journal_head`` is recorded with every write; the
        head the file held is ``recorded_head`` (None for a file of the older format).

        Raises:
            StationConfigError: the state file is missing (and no sealed state) or does not
                decrypt (tampered, or another station's).
            JournalError: ``floor_index`` is implausibly far ahead (``journal_forged``).
        """
        data_key = envelope.derive_key(transport_key, STATE_INFO)
        stream = None if not sealed_state else KeyStream.from_state(sealed_state)
        recorded: JournalHead | None = None
        if path.exists():
            from_file, recorded = _read_state(path, station_id, data_key)
            if stream is None or from_file.next_index > stream.next_index:
                stream = from_file
        if stream is None:
            raise StationConfigError(str(path), "key stream state missing: re-enrol the station")
        if floor_index - stream.next_index > MAX_JOURNAL_SKIP:
            raise JournalError(
                f"the journal names DRBG index {floor_index - 1}, more than {MAX_JOURNAL_SKIP} "
                f"past the key stream's next index {stream.next_index}", code="journal_forged")
        if floor_index > stream.next_index:
            stream.advance_to(floor_index)
        return cls(path, station_id, data_key, stream, journal_head, recorded)

    @property
    def next_index(self) -> int:
        """The index the next key will have."""
        with self._lock:
            return self._stream.next_index

    def skip_to(self, index: int) -> None:
        """Move forward to ``index`` (burning the indices in between); never backwards."""
        with self._lock:
            if index > self._stream.next_index:
                ahead = self._stream.clone()
                ahead.advance_to(index)
                self._write(ahead)
                self._stream = ahead

    def key_at(self, index: int, key_size_bytes: int) -> Secret:
        """Persist the stream past ``index``, then return that index's key.

        Raises:
            IndexBehind: ``index`` was already used or skipped.
        """
        with self._lock:
            at_index = self._stream.clone()
            at_index.advance_to(index)
            past = at_index.clone()
            past.advance_to(index + 1)
            self._write(past)  # write-ahead: the state on disk is past the index before the key
            self._stream = past
            return at_index.next_key(key_size_bytes)[1]

    def close(self) -> None:
        """Wipe the session data key."""
        self._data_key.wipe()

    def _write(self, stream: KeyStream) -> None:
        head = self._journal_head()
        with stream.export_state() as state:
            plain = bytearray(state.reveal()) + _HEAD.pack(head.seq, head.mac)
            try:
                blob = envelope.encrypt(self._data_key, plain, _aad(self._station_id))
            finally:
                plain[:] = bytes(len(plain))
        partial = self._path.with_name(self._path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, self._path)
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read_state(path: Path, station_id: str, data_key: Secret
                ) -> tuple[KeyStream, JournalHead | None]:
    """Decrypt a state file: the stream, and the journal head it recorded (None: PKS1)."""
    blob = path.read_bytes()
    try:
        plain = envelope.decrypt(data_key, blob, _aad(station_id))
        head_size = _HEAD.size
    except DecryptError:
        try:
            plain = envelope.decrypt(data_key, blob, _aad(station_id, _OLD_MAGIC))
            head_size = 0
        except DecryptError as exc:
            raise StationConfigError(str(path), "key stream state does not decrypt") from exc
    try:
        stream = KeyStream.from_state(plain[: len(plain) - head_size])
        if not head_size:
            return stream, None
        seq, mac = _HEAD.unpack_from(plain, len(plain) - head_size)
        return stream, JournalHead(seq, mac)
    finally:
        plain[:] = bytes(len(plain))
