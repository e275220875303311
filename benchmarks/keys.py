"""Site key operations, key files vs a SoftHSM2 token, through the same ``SiteKeys`` seam.

Run: python benchmarks/keys.py [--rounds N]
Prints median wall and CPU microseconds per wrap (32-byte device key), unwrap, Ed25519
signature (an audit entry) and station certificate, and the token/files ratio. In-process
AES-GCM is what a "per-process data key wrapped by the token key" would cost per wrap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from provisioner.crypto.secret import Secret
from provisioner.hsm.pin import PIN_ENV
from provisioner.site import admin, keys
from provisioner.site.keyprovider.base import SiteKeys
from provisioner.site.keyprovider.config import TokenConfig
from provisioner.site.keyprovider.setup import open_site_keys

TOKEN_PIN = "bench-0000"
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
AAD = b"provisioner/site/device-key|1|0"


def _measure(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1e6, statistics.median(cpus) * 1e6


def _ops(site_keys: SiteKeys, rounds: int) -> dict[str, tuple[float, float]]:
    blob = site_keys.wrap(os.urandom(32), AAD)
    now = datetime.now(UTC)
    return {
        "wrap device key": _measure(lambda: site_keys.wrap(os.urandom(32), AAD), rounds),
        "unwrap device key": _measure(lambda: site_keys.unwrap(blob, AAD).wipe(), rounds),
        "sign audit entry": _measure(lambda: site_keys.signer.sign(os.urandom(32)), rounds),
        "issue station cert": _measure(
            lambda: keys.issue_station_cert(site_keys.ca, "b", "ST", now), max(rounds // 10, 5)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "tokens").mkdir()
        conf = work / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {work / 'tokens'}\n"
                        "objectstore.backend = file\nlog.level = ERROR\n", encoding="utf-8")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        os.environ[PIN_ENV] = TOKEN_PIN
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "bench",
                        "--pin", TOKEN_PIN, "--so-pin", "bench-so-0000"], check=True,
                       capture_output=True)
        admin.init_site(work / "files", site_name="bench")
        admin.init_site(work / "token", site_name="bench",
                        token=TokenConfig(module=MODULE, token_label="bench"),
                        pin=Secret(TOKEN_PIN.encode()))
        results = {}
        for name in ("files", "token"):
            site_keys = open_site_keys(work / name)
            try:
                results[name] = _ops(site_keys, args.rounds)
            finally:
                site_keys.close()
    print(f"median of {args.rounds} rounds (certificates: {max(args.rounds // 10, 5)}), "
          "microseconds wall / CPU")
    for op in results["files"]:
        (fw, fc), (tw, tc) = results["files"][op], results["token"][op]
        print(f"{op:<20} files {fw:9.1f} / {fc:9.1f}   token {tw:9.1f} / {tc:9.1f}   "
              f"token/files wall {tw / fw:6.1f}")


if __name__ == "__main__":
    main()
