"""Composition root: the `provisioner` command, wiring each part's command group."""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click command; imported only when used.
_COMMANDS: dict[str, str] = {
    "site": "provisioner.site.admin_cli:site_group",
    "station": "provisioner.station.commands:station_group",
    "flash": "provisioner.flash.commands:flash_group",
    "sim": "provisioner.sim.commands:sim_group",
    "audit": "provisioner.audit.commands:audit_group",
    "demo": "provisioner.demo:demo_command",
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, keeping start-up fast."""

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
def main() -> None:
    """Secure manufacturing provisioning: protected site, station, flash tools, virtual boards."""


if __name__ == "__main__":
    main()
