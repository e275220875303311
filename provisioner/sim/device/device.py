"""The reference device's bootloader: request, verify → decrypt → digest → checks → write →
self-test → switch, with boot state and event log in its own flash (spec §7)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from hex_generator import decode_device_id
from hw_profiles import Profile, UpdateLayout, load_profile
from provisioner.crypto.secret import Secret
from provisioner.crypto.signing import VerifyKey
from provisioner.errors import InstallRefused
from provisioner.sim.device.flash import BoardFlash, PowerCut
from provisioner.sim.device.records import (
    BootState,
    Event,
    LogRecord,
    Pending,
    append_log,
    read_log,
    read_state,
    write_state,
)
from provisioner.update import derive
from provisioner.update.codec import (
    NONCE_SIZE,
    Manifest,
    Outcome,
    Reason,
    ResultReport,
    UpdateRequest,
)
from provisioner.update.package import decrypt, verify

Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Signed:
    """Bytes the device sends and the MAC over them."""

    body: bytes
    mac: bytes


def board_paths(directory: Path, probe_uid: str) -> tuple[Path, Path]:
    """The state (.json) and flash (.bin) files of a virtual board."""
    return directory / f"{probe_uid}.json", directory / f"{probe_uid}.bin"


class ReferenceDevice:
    """A device running the reference bootloader on a virtual board's flash.

    It knows only its own flash (ID and key zones the station patched, slots, boot state,
    event log) and the manufacturer's public key its bootloader was built with.
    """

    def __init__(self, flash: BoardFlash, profile: Profile, verify_key: VerifyKey, *,
                 rng: Rng = os.urandom,
                 self_test: Callable[[bytes], bool] | None = None) -> None:
        if profile.update is None:
            raise ValueError(f"profile {profile.name} has no [update] section")
        self.flash = flash
        self.profile = profile
        self.layout: UpdateLayout = profile.update
        self._verify_key = verify_key
        self._rng = rng
        self._self_test = self_test or self.vector_table_ok
        zone = profile.id_zone
        self.device_id = decode_device_id(flash.read(zone.address, zone.size_bytes), zone)
        self.state = read_state(flash, self.layout.boot_state)

    @classmethod
    def open_board(cls, directory: Path, probe_uid: str, verify_key: VerifyKey, *,
                   power_cut_in_slots: int | None = None, rng: Rng = os.urandom,
                   self_test: Callable[[bytes], bool] | None = None) -> ReferenceDevice:
        """Open the virtual SWD board ``probe_uid`` kept in ``directory``.

        ``power_cut_in_slots`` = n cuts the power before the n-th (0-based) page write into
        an image slot (crash tests).
        """
        state_path, flash_path = board_paths(directory, probe_uid)
        profile = load_profile(str(json.loads(state_path.read_text())["profile"]))
        cut = None
        if power_cut_in_slots is not None and profile.update is not None:
            slots = profile.update.slots
            cut = PowerCut(power_cut_in_slots, slots[0].base, slots[1].end)
        flash = BoardFlash(flash_path, profile, power_cut=cut)
        return cls(flash, profile, verify_key, rng=rng, self_test=self_test)

    # --- flash views ------------------------------------------------------------------

    def _key(self) -> Secret:
        zone = self.profile.key_zone
        return Secret(self.flash.read(zone.address, zone.size_bytes))

    def _log(self, event: Event, reason: Reason = Reason.none, value: int = 0) -> None:
        append_log(self.flash, self.layout.event_log, event, reason, value)

    def _save(self, state: BootState) -> None:
        self.state = write_state(self.flash, self.layout.boot_state, state)

    def log(self) -> list[LogRecord]:
        """The event log, oldest first."""
        return read_log(self.flash, self.layout.event_log)

    def slot_bytes(self, slot: int, size: int) -> bytes:
        """``size`` bytes at the start of slot ``slot``."""
        return self.flash.read(self.layout.slots[slot].base, size)

    # --- boot ---------------------------------------------------------------------------

    def boot(self) -> None:
        """Reset: an install cut short is rolled back (the active slot never changed)."""
        state = self.state
        if state.pending == Pending.writing:
            state = replace(state, pending=Pending.none).with_unreported(
                state.pending_delivery_id, Outcome.rolled_back, Reason.interrupted)
            self._save(state)
            self._log(Event.rolled_back, Reason.interrupted, state.pending_delivery_id)
        self._log(Event.boot, Reason.none, self.state.running_version)

    # --- request / result -------------------------------------------------------------

    def make_request(self) -> Signed:
        """A new signed update request; its nonce is kept in the boot state."""
        nonce = self._rng(NONCE_SIZE)
        request = UpdateRequest(self.device_id, self.state.running_version,
                                self.state.security_counter, nonce)
        self._save(replace(self.state, request_nonce=nonce))
        self._log(Event.request_sent, Reason.none, self.state.running_version)
        with self._key() as key:
            body = request.to_bytes()
            return Signed(body, derive.mac(derive.request_mac_key(key, self.device_id), body))

    def _report(self, delivery_id: int, outcome: Outcome, reason: Reason) -> Signed:
        report = ResultReport(outcome, reason, self.device_id, delivery_id,
                              self.state.running_version, self.state.security_counter)
        with self._key() as key:
            body = report.to_bytes()
            return Signed(body, derive.mac(derive.result_mac_key(key, self.device_id), body))

    def pending_result(self) -> Signed | None:
        """The signed outcome the site has not acknowledged yet, if any."""
        found = self.state.unreported
        return None if found is None else self._report(*found)

    def acknowledge(self, delivery_id: int) -> None:
        """The site stored the outcome of ``delivery_id``: forget it."""
        if self.state.unreported_delivery_id == delivery_id:
            self._save(replace(self.state, unreported_delivery_id=0, unreported_outcome=0,
                               unreported_reason=0))
            self._log(Event.result_reported, Reason.none, delivery_id)

    # --- install ------------------------------------------------------------------------

    def install(self, package: bytes) -> Signed:
        """Install ``package`` or keep the previous image; return the signed outcome."""
        delivery_id = 0
        try:
            signed = verify(self._verify_key, package)
            manifest = signed.manifest
            delivery_id = manifest.delivery_id
            if manifest.device_id != self.device_id:
                raise InstallRefused(Reason.wrong_device.name,
                                     f"package is for device {manifest.device_id}")
            if manifest.request_nonce != self.state.request_nonce:
                raise InstallRefused(Reason.stale_package.name,
                                     "package does not answer this device's last request")
            with self._key() as key:
                image = decrypt(signed, key)
            try:
                self._check_versions(manifest)
                self._write_and_switch(manifest, image)
            finally:
                image[:] = bytes(len(image))
        except InstallRefused as refusal:
            reason = Reason[refusal.reason]
            was_writing = self.state.pending == Pending.writing
            self._save(replace(self.state, pending=Pending.none, request_nonce=bytes(NONCE_SIZE))
                       .with_unreported(delivery_id, Outcome.rolled_back, reason))
            self._log(Event.rolled_back if was_writing else Event.package_refused, reason,
                      delivery_id)
            return self._report(delivery_id, Outcome.rolled_back, reason)
        return self._report(delivery_id, Outcome.installed, Reason.none)

    def _check_versions(self, manifest: Manifest) -> None:
        state = self.state
        if manifest.version <= state.running_version:
            raise InstallRefused(Reason.downgrade.name, f"version {manifest.version:#x} is not "
                                 f"newer than the running {state.running_version:#x}")
        if manifest.version < state.security_counter:
            raise InstallRefused(Reason.rollback_counter.name,
                                 f"version {manifest.version:#x} is below the security counter")
        if state.running_version < manifest.requires_version:
            raise InstallRefused(Reason.predecessor_required.name,
                                 f"needs {manifest.requires_version:#x} installed first")
        if manifest.image_size > self.layout.slots[0].size_bytes:
            raise InstallRefused(Reason.too_large.name,
                                 f"{manifest.image_size} bytes do not fit the slot")

    def _write_and_switch(self, manifest: Manifest, image: bytearray) -> None:
        target = 1 - self.state.active_slot
        self._log(Event.install_started, Reason.none, manifest.version)
        self._save(replace(self.state, pending=Pending.writing, pending_version=manifest.version,
                           pending_delivery_id=manifest.delivery_id))
        slot = self.layout.slots[target]
        page = self.layout.page_size_bytes
        for offset in range(0, slot.size_bytes, page):
            self.flash.erase_page(slot.base + offset)
        for offset in range(0, len(image), page):
            self.flash.program(slot.base + offset, bytes(image[offset:offset + page]))
        written = self.flash.read(slot.base, manifest.image_size)
        if hashlib.sha512(written).digest() != manifest.image_digest:
            raise InstallRefused(Reason.write_failed.name, "read-back digest of the slot differs")
        self._log(Event.slot_written, Reason.none, manifest.version)
        if not self._self_test(written):
            raise InstallRefused(Reason.self_test_failed.name,
                                 "new image failed its self-test (vector table)")
        self._log(Event.self_test_passed, Reason.none, manifest.version)
        self._save(replace(
            self.state, active_slot=target, pending=Pending.none,
            running_version=manifest.version, active_size=manifest.image_size,
            security_counter=max(self.state.security_counter, manifest.security_counter),
            request_nonce=bytes(NONCE_SIZE),
        ).with_unreported(manifest.delivery_id, Outcome.installed, Reason.none))
        self._log(Event.installed, Reason.none, manifest.version)

    def vector_table_ok(self, image: bytes) -> bool:
        """Self-test: initial SP inside RAM and 8-byte aligned, reset vector Thumb and set."""
        if len(image) < 8:
            return False
        sp, reset = int.from_bytes(image[0:4], "little"), int.from_bytes(image[4:8], "little")
        ram = self.profile.ram
        return (ram.base < sp <= ram.end and sp % 8 == 0 and reset & 1 == 1
                and reset != 0xFFFFFFFF)
