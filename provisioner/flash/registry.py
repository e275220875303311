"""Build the transport → backend registry (called by the composition root, never at import)."""

from __future__ import annotations

from hw_profiles import Profile
from provisioner.flash.backend import BackendRegistry, FlashBackend


def _serial(*, port: str, profile: Profile, **options: object) -> FlashBackend:
    from provisioner.flash.serial_rom.backend import SerialRomBackend

    return SerialRomBackend(port, profile, **options)  # type: ignore[arg-type]


def _swd(*, probe_uid: str, profile: Profile) -> FlashBackend:
    from provisioner.flash.swd import SwdBackend  # pyOCD loads only when SWD is used

    return SwdBackend(probe_uid, profile)


def build_registry() -> BackendRegistry:
    """Return a registry with "serial" (port=, profile=) and "swd" (probe_uid=, profile=)."""
    registry = BackendRegistry()
    registry.register("serial", _serial)
    registry.register("swd", _swd)
    return registry
