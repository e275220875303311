"""Hardware profiles: one validated TOML file per board/MCU, resolved to frozen values."""

from hw_profiles.errors import ProfileValidationError
from hw_profiles.loader import list_profiles, load_profile
from hw_profiles.profile import (
    FlashGeometry,
    MemoryRegion,
    PinWiring,
    Profile,
    ReadoutProtection,
    SerialTransport,
    SwdTransport,
    UpdateLayout,
)

__all__ = [
    "FlashGeometry",
    "MemoryRegion",
    "PinWiring",
    "Profile",
    "ProfileValidationError",
    "ReadoutProtection",
    "SerialTransport",
    "SwdTransport",
    "UpdateLayout",
    "list_profiles",
    "load_profile",
]
