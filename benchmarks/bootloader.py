"""C bootloader benchmark: emulator speed, and the instructions to verify and decrypt 64 KiB.

1. Emulated instructions per second (median of 5 runs, wall clock) for two loads: the boot
   path into the application's SysTick polling loop (peripheral accesses cross into Python),
   and Ed25519 + ChaCha20-Poly1305 + SHA-512 work (pure core execution).
2. Instructions the bootloader executes to handle a 64 KiB update package (signature check,
   streaming decrypt, tag and SHA-512 digest; 64 KiB exceeds the 18 KiB slot, so nothing is
   written and it answers too_large after the checks), counted one by one with a code hook;
   minus the same bytes received in a package refused at once (the UART receive loop), the
   rest is the crypto. Cycles = instructions x CPI: a Cortex-M3 at 72 MHz with 2 flash wait
   states and the prefetch buffer runs at about 1.0-1.5 cycles per instruction.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import unicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from test_bootloader_update import (
    DEVICE_ID,
    DEVICE_KEY,
    PUBLIC,
    SIGNER,
    Device,
    factory_flash,
    request,
)
from update_spec import frame, manifest, seal

from provisioner.sim.boot_runner import run_board

IMAGE_BYTES = 64 * 1024
ROUNDS = 5


def boot_speed() -> float:
    """Instructions per second from reset through the banner into the application's loop."""
    rates = []
    for _ in range(ROUNDS):
        device = Device(factory_flash())
        started = time.perf_counter()
        result = run_board(device.board, max_instructions=5_000_000)
        rates.append(result.instructions / (time.perf_counter() - started))
    return statistics.median(rates)


def _package(nonce: bytes, corrupt_magic: bool) -> bytes:
    image = bytes((i * 7 + 3) & 0xFF for i in range(IMAGE_BYTES))
    header = manifest(device_id=DEVICE_ID, delivery_id=9, version=0x00010001,
                      requires_version=0, security_counter=0, image=image, request_nonce=nonce,
                      package_nonce=bytes(12), issued_at=1_780_000_000, signer_public=PUBLIC)
    sealed = bytearray(seal(SIGNER, header, image, DEVICE_KEY))
    if corrupt_magic:
        sealed[0] ^= 0xFF  # refused as malformed before any crypto; every byte still received
    return bytes(sealed)


def counted_exchange(corrupt_magic: bool) -> tuple[int, float, str]:
    """(instructions, seconds, reason) for one 64 KiB package, counted by a code hook."""
    device = Device(factory_flash())
    nonce = request(device)
    package = _package(nonce, corrupt_magic)
    count = [0]

    def on_code(uc: object, address: int, size: int, data: object) -> None:
        count[0] += 1

    hook = device.board.core.uc.hook_add(unicorn.UC_HOOK_CODE, on_code)
    started = time.perf_counter()
    answer = device.exchange(frame(0x04, package), budget=2_000_000_000)
    elapsed = time.perf_counter() - started
    device.board.core.uc.hook_del(hook)
    assert answer is not None
    reason = answer[1][6]
    return count[0], elapsed, {1: "malformed", 8: "too_large"}.get(reason, str(reason))


def main() -> int:
    """Print the figures."""
    print(f"boot path (peripheral polling): {boot_speed() / 1e6:.2f} M emulated instructions/s "
          f"(median of {ROUNDS})")
    rates = []
    for _ in range(3):
        device = Device(factory_flash())
        nonce = request(device)
        package = _package(nonce, corrupt_magic=False)
        started = time.perf_counter()
        usart = device.board.peripherals.usart1 if device.board.peripherals else None
        assert usart is not None
        answer = device.exchange(frame(0x04, package), budget=2_000_000_000)
        assert answer is not None
        rates.append(time.perf_counter() - started)
    total, _, reason = counted_exchange(corrupt_magic=False)
    receive_only, _, refused = counted_exchange(corrupt_magic=True)
    assert (reason, refused) == ("too_large", "malformed"), (reason, refused)
    unhooked_s = statistics.median(rates)
    print(f"64 KiB package, crypto run (no hook): {total / unhooked_s / 1e6:.2f} M emulated "
          f"instructions/s ({unhooked_s:.2f} s median of 3)")
    crypto = total - receive_only
    print(f"64 KiB package handled ({reason}): {total:,} instructions in all; "
          f"{receive_only:,} to receive the bytes (refused at once); "
          f"{crypto:,} for Ed25519 + ChaCha20-Poly1305 + SHA-512")
    for cpi in (1.0, 1.5):
        print(f"  at 72 MHz, CPI {cpi}: verify+decrypt {crypto * cpi / 72e6 * 1e3:.0f} ms "
              f"({crypto * cpi:,.0f} cycles)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
