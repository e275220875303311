"""The station's key stream, persisted past an index before that index's key ever exists.

Why a second file next to the sealed secrets: sealing costs one scrypt (n=2^15, ~0.1-0.3 s),
far above the 50 ms per-board budget. The sealed file is opened once at unlock; its transport
key yields (HKDF, own ``info``) a data key that lives only in memory for the session. Before
each key is derived, the DRBG working state *past* that index is AES-GCM encrypted under that
data key and written atomically (0600, fsync, rename): a millisecond, not a scrypt. The file is
as strong as the passphrase (its key exists only inside the sealed file), an index is never
reused after a crash (the state on disk is already past it), and a stolen station cannot
rewind to a used index. The sealed file's own copy of the state is refreshed in a background
thread after each board and at close, so it also never lags far behind; at unlock the more
advanced of the two states wins.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from provisioner.crypto import envelope
from provisioner.crypto.keystream import KeyStream
from provisioner.crypto.secret import Secret
from provisioner.errors import DecryptError, StationConfigError

STATE_INFO = b"provisioner/station-keystream-state/v1"
_MAGIC = b"PKS1"


def _aad(station_id: str) -> bytes:
    return _MAGIC + b"|" + station_id.encode()


class KeyStore:
    """Forward-only key derivation with write-ahead persistence; thread-safe."""

    def __init__(
        self,
        path: Path,
        station_id: str,
        data_key: Secret,
        stream: KeyStream,
        reseal: Callable[[Secret], None] | None = None,
    ) -> None:
        self._path = path
        self._station_id = station_id
        self._data_key = data_key
        self._stream = stream
        self._reseal = reseal
        self._lock = threading.Lock()
        self._reseal_wanted = threading.Event()
        self._reseal_thread: threading.Thread | None = None
        self._stop = False
        self._write(stream)

    @classmethod
    def unlock(
        cls,
        path: Path,
        station_id: str,
        transport_key: Secret,
        sealed_state: Secret,
        *,
        floor_index: int = 0,
        reseal: Callable[[Secret], None] | None = None,
    ) -> KeyStore:
        """Open the key stream at the most advanced of the sealed and file states.

        ``floor_index`` (from the journal) moves the stream forward to at least that index.

        Raises:
            StationConfigError: the state file exists but does not decrypt (tampered or foreign).
        """
        data_key = envelope.derive_key(transport_key, STATE_INFO)
        stream = KeyStream.from_state(sealed_state)
        if path.exists():
            try:
                state = envelope.decrypt(data_key, path.read_bytes(), _aad(station_id))
            except DecryptError as exc:
                raise StationConfigError(str(path), "key stream state does not decrypt") from exc
            try:
                from_file = KeyStream.from_state(state)
            finally:
                state[:] = bytes(len(state))
            if from_file.next_index > stream.next_index:
                stream = from_file
        if floor_index > stream.next_index:
            stream.advance_to(floor_index)
        return cls(path, station_id, data_key, stream, reseal)

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
            _, key = at_index.next_key(key_size_bytes)
        self._reseal_wanted.set()
        return key

    def export_state(self) -> Secret:
        """Return the current working state (for sealing)."""
        with self._lock:
            return self._stream.export_state()

    def start_background_reseal(self) -> None:
        """Refresh the sealed file's state in a thread after keys are used (coalesced)."""
        if self._reseal is None or self._reseal_thread is not None:
            return
        self._reseal_thread = threading.Thread(
            target=self._reseal_loop, name="keystore-reseal", daemon=True
        )
        self._reseal_thread.start()

    def close(self) -> None:
        """Seal the final state once more and wipe the session data key."""
        self._reseal_wanted.set()
        thread, self._reseal_thread = self._reseal_thread, None
        if thread is not None:
            self._stop = True
            thread.join()
        if self._reseal is not None:
            with self.export_state() as state:
                self._reseal(state)
        self._data_key.wipe()

    def _reseal_loop(self) -> None:
        assert self._reseal is not None
        while True:
            self._reseal_wanted.wait()
            self._reseal_wanted.clear()
            if self._stop:
                return
            with self.export_state() as state:
                self._reseal(state)

    def _write(self, stream: KeyStream) -> None:
        with stream.export_state() as state:
            blob = envelope.encrypt(self._data_key, state.reveal(), _aad(self._station_id))
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
