"""Composition root: the `provisioner` command, wiring each part's command group."""

from __future__ import annotations

import importlib
from typing import IO, Any

import click

DEBUG_KEY = "provisioner.debug"

# command name -> "module:attribute" of a click command; imported only when used.
_COMMANDS: dict[str, str] = {
    "site": "provisioner.site.admin_cli:site_group",
    "station": "provisioner.station.commands:station_group",
    "flash": "provisioner.flash.commands:flash_group",
    "sim": "provisioner.sim.commands:sim_group",
    "audit": "provisioner.audit.commands:audit_group",
    "device": "provisioner.relay.commands:device_group",
    "demo": "provisioner.demo:demo_command",
}


def one_line(exc: BaseException) -> str:
    """Return an exception as one line of words (an unexpected one names its class)."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    if type(exc).__module__.split(".")[0] in ("provisioner", "hex_generator", "hw_profiles"):
        return text or type(exc).__name__
    return f"unexpected {type(exc).__name__}: {text} (run with --debug for the traceback)"


class _OneLineUsageError(click.UsageError):
    """A usage error shown as one line that names the command's help, not click's three."""

    def show(self, file: IO[Any] | None = None) -> None:
        # click's option parser raises some errors without the command's context.
        see = (f"see '{self.ctx.command_path} --help'" if self.ctx is not None
               else "add --help to the command for its usage")
        click.echo(f"Error: {self.format_message().rstrip('.')} ({see}).", file=file,
                   err=file is None)


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, keeping start-up fast.

    It is also the one place that turns any error escaping a command into a one-line
    ``Error: …`` (exit status 1; a usage error keeps status 2); ``provisioner --debug …``
    shows the traceback instead.
    """

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _OneLineUsageError(exc.format_message(), exc.ctx) from exc

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except _OneLineUsageError:
            raise
        except click.UsageError as exc:
            raise _OneLineUsageError(exc.format_message(), exc.ctx) from exc
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.meta.get(DEBUG_KEY):
                raise
            raise click.ClickException(one_line(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=_LazyGroup)
@click.version_option(package_name="provisioner")
@click.option("--debug", is_flag=True, help="Show the traceback of a failure.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Secure manufacturing provisioning: protected site, station, flash tools, virtual boards."""
    ctx.meta[DEBUG_KEY] = debug


if __name__ == "__main__":
    main(prog_name="provisioner")
