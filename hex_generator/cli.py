"""Command line: hex-generator info | convert | patch (``main`` takes the layout resolver)."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from hex_generator.binary import DEFAULT_MAX_BINARY_BYTES
from hex_generator.errors import HexError
from hex_generator.files import FORMATS, load, save
from hex_generator.image import Image
from hex_generator.patch import PatchLayout, patch

LayoutResolver = Callable[[str], PatchLayout]
PROG = "hex-generator"
DESCRIPTION = (
    "Inspect, convert and patch firmware images (Intel HEX, Motorola S-record, raw binary). "
    "`patch` writes a device ID and key into a bootloader template at the zones of a "
    "hardware profile (--profile NAME or a TOML path)."
)


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the hex-generator command."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="show ranges, sizes and digest of an image file")
    info.add_argument("file")
    info.add_argument("--format", choices=FORMATS, dest="fmt")
    info.add_argument("--base", type=_int, default=0, help="load address of a binary file")
    info.add_argument("--fill-byte", type=_int, default=0xFF, help="gap value for the digest")

    convert = commands.add_parser("convert", help="convert between Intel HEX, S-record, binary")
    convert.add_argument("input")
    convert.add_argument("output")
    convert.add_argument("--record-length", type=_int, default=16, help="data bytes per record")
    convert.add_argument("--input-format", choices=FORMATS)
    convert.add_argument("--output-format", choices=FORMATS)
    convert.add_argument("--base", type=_int, default=0, help="load address of a binary input")
    convert.add_argument("--max-size", type=_int, default=DEFAULT_MAX_BINARY_BYTES,
                         help="largest binary output in bytes (a sparse image's whole span)")

    patcher = commands.add_parser("patch", help="patch a template (lab use only: writes the key)")
    patcher.add_argument("template")
    patcher.add_argument("--profile", required=True, help="profile name or TOML path")
    patcher.add_argument("--device-id", required=True, type=_int)
    patcher.add_argument("--key-hex", required=True, help="the device key as hex digits")
    patcher.add_argument("-o", "--output", required=True)
    patcher.add_argument("--record-length", type=_int, default=16)
    return parser


def _info(args: argparse.Namespace) -> None:
    image = load(args.file, fmt=args.fmt, base=args.base)
    for start, end in image.ranges():
        print(f"0x{start:08X}-0x{end:08X}  {end - start:>10,} bytes")
    print(f"total {image.size_bytes:,} bytes in {len(image.ranges())} range(s)")
    if image.start_address is not None:
        print(f"entry 0x{image.start_address.entry:08X} ({image.start_address.kind})")
    if image.size_bytes:
        digest = image.sha256(image.min_address, image.max_address, args.fill_byte)
        span = f"[0x{image.min_address:08X}, 0x{image.max_address:08X})"
        print(f"sha256 {span} fill 0x{args.fill_byte:02X}: {digest.hex()}")


def _convert(args: argparse.Namespace) -> None:
    image = load(args.input, fmt=args.input_format, base=args.base)
    save(args.output, image, fmt=args.output_format, record_length=args.record_length,
         max_binary_bytes=args.max_size)
    print(f"wrote {args.output}: {image.size_bytes:,} bytes in {len(image.ranges())} range(s)")


def _patch(args: argparse.Namespace, resolve_layout: LayoutResolver | None) -> None:
    if resolve_layout is None:
        raise HexError("patch needs hardware profiles: run the hex-generator console script")
    layout = resolve_layout(args.profile)
    template = load(args.template)
    try:
        key = bytearray.fromhex(args.key_hex)
    except ValueError:
        raise HexError("--key-hex is not an even run of hex digits") from None
    patched: Image | None = None
    try:
        patched = patch(template, layout, args.device_id, key)
        save(args.output, patched, record_length=args.record_length)
        digest = patched.sha256(layout.image_start, layout.image_end, layout.fill_byte)
    finally:
        key[:] = bytes(len(key))
        if patched is not None:
            patched.wipe()
    print(f"wrote {args.output}: device ID {args.device_id}, image_sha256 {digest.hex()}")


def main(argv: Sequence[str] | None = None, *, resolve_layout: LayoutResolver | None = None) -> int:
    """Run the command line; return the exit status (errors: one line, --debug adds traceback)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            _info(args)
        elif args.command == "convert":
            _convert(args)
        else:
            _patch(args, resolve_layout)
    except (HexError, ValueError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
