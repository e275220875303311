"""Entry point of the hex-generator console script: hex_generator's CLI with profile lookup."""

from __future__ import annotations

from collections.abc import Sequence

from hex_generator import HexError, PatchLayout
from hex_generator import cli as hex_cli
from hw_profiles.errors import ProfileValidationError
from hw_profiles.loader import load_profile


def resolve_layout(name_or_path: str) -> PatchLayout:
    """Return the patch layout of a profile given by name or TOML path.

    Raises:
        HexError: the profile cannot be loaded (message names file and key path).
    """
    try:
        return load_profile(name_or_path).patch_layout()
    except ProfileValidationError as exc:
        raise HexError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hex-generator` with hardware profiles available to its patch command."""
    return hex_cli.main(argv, resolve_layout=resolve_layout)


if __name__ == "__main__":
    raise SystemExit(main())
