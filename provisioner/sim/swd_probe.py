"""pyOCD probe plugin entry point for virtual SWD boards (only with PROVISIONER_VIRTUAL_PROBES).

pyOCD imports every ``pyocd.probe`` entry point while it is itself first imported, so this module
must not import pyOCD at import time: the plugin classes are resolved on first attribute access
(PEP 562) from ``provisioner.sim.virtual_probe``, whichever of the two is imported first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_VAR = "PROVISIONER_VIRTUAL_PROBES"
PLUGIN_NAME = "provisioner_virtual"
_LAZY = ("VirtualProbe", "VirtualProbePlugin")


def boards_directory() -> Path | None:
    """The directory of virtual board state files, or None when virtual probes are disabled."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value) if value else None


def register_with_pyocd() -> bool:
    """Add the plugin to a pyOCD imported before the setting was made; True if it is available."""
    from pyocd.probe.aggregator import PROBE_CLASSES

    from provisioner.sim.virtual_probe import VirtualProbePlugin

    plugin = VirtualProbePlugin()
    if not plugin.should_load():
        return False
    PROBE_CLASSES[plugin.name] = plugin.load()
    return True


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from provisioner.sim import virtual_probe

        return getattr(virtual_probe, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
