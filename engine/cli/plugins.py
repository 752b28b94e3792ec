"""Commands that installed distributions add to ``sop`` (entry-point group ``sop_engine.commands``).

The engine names no plugin: ``sop sandbox`` comes from the payments distribution this
way. Looked up only when the command word is not a built-in one (or for ``--help``),
so built-in commands never scan the installed metadata.
"""

from __future__ import annotations

import argparse
from typing import Protocol, runtime_checkable

from engine.errors import UsageError

ENTRY_POINT_GROUP = "sop_engine.commands"


@runtime_checkable
class PluginCommand(Protocol):
    """What a ``sop_engine.commands`` entry point names."""

    help: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's own arguments."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the command; the exit code."""


def plugin_commands(reserved: frozenset[str] = frozenset()) -> dict[str, PluginCommand]:
    """name -> command for every installed entry point not shadowing a built-in one."""
    # lazy: importlib.metadata costs ~20-40 ms, which built-in commands (the `sop lint`
    # cold start among them) never need
    from importlib.metadata import entry_points

    found: dict[str, PluginCommand] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in reserved or ep.name in found:
            continue
        command = ep.load()
        if not isinstance(command, PluginCommand):
            raise UsageError(
                f"entry point {ep.name} = {ep.value!r} ({ENTRY_POINT_GROUP}) is not a command:"
                " it needs help, configure(parser) and run(args)"
            )
        found[ep.name] = command
    return found


__all__ = ["ENTRY_POINT_GROUP", "PluginCommand", "plugin_commands"]
