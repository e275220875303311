"""SoftHSM2 tokens made by the tests themselves: own SOFTHSM2_CONF and token directory in tmp.

A PKCS#11 module reads its configuration at C_Initialize, and the site unloads the module
when the last holder closes, so a test that switches SOFTHSM2_CONF must have closed every
site it opened first.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisioner.crypto.secret import Secret
from provisioner.site.keyprovider.config import TokenConfig

MODULE_CANDIDATES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
)
USER_PIN = "20261201"
SO_PIN = "so-87654321"


def softhsm_module() -> Path:
    """The SoftHSM2 PKCS#11 module (Debian ``softhsm2``, installed by tests/run_all.sh)."""
    for path in MODULE_CANDIDATES:
        if path.exists():
            return path
    raise AssertionError("SoftHSM2 is not installed: apt-get install softhsm2 "
                         "(tests/run_all.sh does)")


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 configuration whose tokens live in a directory of this test's."""

    conf: Path
    module: Path

    def init_token(self, label: str, pin: str = USER_PIN) -> TokenConfig:
        """Initialise a fresh token in the first free slot; return its site configuration."""
        util = shutil.which("softhsm2-util")
        assert util is not None, "softhsm2-util missing (apt-get install softhsm2)"
        subprocess.run([util, "--init-token", "--free", "--label", label, "--pin", pin,
                        "--so-pin", SO_PIN], check=True, capture_output=True,
                       env={"SOFTHSM2_CONF": str(self.conf), "PATH": "/usr/bin:/bin"})
        return TokenConfig(module=str(self.module), token_label=label)


def make_softhsm(root: Path, monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    """Write a SoftHSM2 configuration under ``root`` and point SOFTHSM2_CONF at it."""
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n", encoding="utf-8")
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    return SoftHsm(conf, softhsm_module())


def pin(value: str = USER_PIN) -> Secret:
    """The test token's user PIN as the site takes it."""
    return Secret(value.encode())
