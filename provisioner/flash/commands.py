"""`provisioner flash` commands: bring up a board through any backend, with a progress bar."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

from hex_generator.errors import HexError
from hw_profiles.errors import ProfileValidationError
from provisioner.errors import ProvisionerError
from provisioner.flash.backend import FlashBackend, MemorySegment, ProgressEvent, opened

P = ParamSpec("P")
R = TypeVar("R")


def _number(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a number (use 0x… for hex)") from exc


def _operator_prompt(action: str) -> None:
    click.pause(f"{action}; then press any key")


@click.group()
@click.option("--port", help="Serial port of a chip in its ROM bootloader.")
@click.option("--probe", help="Debug probe unique ID (SWD).")
@click.option("--profile", help="Hardware profile name or TOML path (required).")
@click.option("--parity", type=click.Choice(["even", "none"]),
              help="Override the profile's serial parity (a pty needs none).")
@click.option("--baud", type=int, help="Override the profile's serial baud rate.")
@click.option("--debug", is_flag=True, help="Show the traceback of a failure.")
@click.pass_context
def flash_group(ctx: click.Context, port: str | None, probe: str | None, profile: str | None,
                parity: str | None, baud: int | None, debug: bool) -> None:
    """Talk to one chip: info, read, write, erase, protect.

    Give --profile and exactly one of --port or --probe before the command
    (checked when the command runs, so every command's --help reads without them).
    """
    ctx.obj = {"port": port, "probe": probe, "profile": profile, "parity": parity,
               "baud": baud, "debug": debug}


def _backend(obj: dict[str, object]) -> FlashBackend:
    from hw_profiles import load_profile
    from provisioner.flash.registry import build_registry

    if obj["profile"] is None:
        raise click.UsageError("give --profile (e.g. --profile stm32f103c8)")
    if (obj["port"] is None) == (obj["probe"] is None):
        raise click.UsageError("give exactly one of --port or --probe")
    profile = load_profile(str(obj["profile"]))
    registry = build_registry()
    if obj["probe"] is not None:
        return registry.create("swd", probe_uid=obj["probe"], profile=profile)
    return registry.create("serial", port=obj["port"], profile=profile, parity=obj["parity"],
                           baud=obj["baud"], operator_prompt=_operator_prompt)


def _reported(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our errors into one line for the operator (the traceback with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (ProvisionerError, HexError, ProfileValidationError, ValueError) as exc:
            ctx = click.get_current_context()
            if (ctx.obj or {}).get("debug") or ctx.find_root().meta.get("provisioner.debug"):
                raise
            raise click.ClickException(str(exc)) from exc

    return wrapper


@contextmanager
def _bar() -> Iterator[Callable[[ProgressEvent], None]]:
    """Yield a progress callback that draws one bar per operation on stderr."""
    columns = (TextColumn("{task.description:8}"), BarColumn(), DownloadColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        tasks: dict[str, TaskID] = {}

        def update(event: ProgressEvent) -> None:
            name = str(event.operation)
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=max(event.total_bytes, 1))
            progress.update(tasks[name], completed=event.done_bytes)

        yield update


@flash_group.command()
@click.pass_obj
@_reported
def info(obj: dict[str, object]) -> None:
    """Connect, print the chip UID and what the backend can do."""
    with opened(_backend(obj)) as backend:
        click.echo(f"location      {backend.location}")
        click.echo(f"chip_uid      {backend.read_uid().hex()}")
        product_id = getattr(backend, "product_id", None)
        if isinstance(product_id, int):
            click.echo(f"product_id    0x{product_id:03X}")
        caps = backend.capabilities
        click.echo(f"mass_erase    {caps.mass_erase}   page_erase {caps.page_erase}")
        click.echo(f"rdp_levels    {', '.join(map(str, caps.readout_protection_levels))}")
        click.echo(f"reset_control {caps.reset_control}   boot_pin {caps.boot_pin_control}")


@flash_group.command()
@click.argument("address")
@click.argument("size")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Binary file to write what was read.")
@click.pass_obj
@_reported
def read(obj: dict[str, object], address: str, size: str, output: Path) -> None:
    """Read SIZE bytes at ADDRESS into a binary file."""
    with opened(_backend(obj)) as backend, _bar() as progress:
        data = backend.read(_number(address), _number(size), progress)
    output.write_bytes(data)
    click.echo(f"read {len(data)} bytes at 0x{_number(address):08X} into {output}")


@flash_group.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--base", default="0", help="Load address of a raw binary file.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare the read-back digest.")
@click.pass_obj
@_reported
def write(obj: dict[str, object], image: Path, base: str, verify: bool) -> None:
    """Erase what IMAGE covers, program it (Intel HEX, S-record or bin) and verify."""
    from hex_generator import load

    loaded = load(image, base=_number(base))
    try:
        segments = [MemorySegment(s.start, s.data) for s in loaded.segments()]
        with opened(_backend(obj)) as backend, _bar() as progress:
            backend.erase([(s.start, s.end) for s in segments], progress)
            backend.program(segments, progress)
            if verify:
                backend.verify(segments, progress)
        click.echo(f"wrote {loaded.size_bytes} bytes in {len(segments)} segment(s)"
                   + (", verified" if verify else ""))
    finally:
        loaded.wipe()


@flash_group.command()
@click.option("--all", "mass", is_flag=True, help="Mass-erase the whole chip.")
@click.option("--range", "ranges", multiple=True, metavar="START:END",
              help="Half-open range to erase (repeatable).")
@click.pass_obj
@_reported
def erase(obj: dict[str, object], mass: bool, ranges: tuple[str, ...]) -> None:
    """Erase the pages covering each range, or everything with --all."""
    if mass == bool(ranges):
        raise click.UsageError("give --all or at least one --range")
    spans: list[tuple[int, int]] = []
    for text in ranges:
        start, sep, end = text.partition(":")
        if not sep:
            raise click.BadParameter(f"{text!r} is not START:END", param_hint="--range")
        spans.append((_number(start), _number(end)))
    with opened(_backend(obj)) as backend, _bar() as progress:
        backend.erase(None if mass else spans, progress)
    click.echo("erased " + ("the whole chip" if mass else ", ".join(ranges)))


@flash_group.command()
@click.argument("level", type=click.IntRange(0, 2))
@click.pass_obj
@_reported
def protect(obj: dict[str, object], level: int) -> None:
    """Set readout protection LEVEL (0 removes it and mass-erases the chip)."""
    with opened(_backend(obj)) as backend:
        backend.protect(level)
    click.echo(f"readout protection level {level} set")
