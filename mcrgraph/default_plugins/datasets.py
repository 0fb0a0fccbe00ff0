"""Benchmarks on local copies of public datasets: ``mcrgraph eval audiocaps``, ``clotho``,
``coco``, ``modelnet40``, ``ave``, ``vggss`` and ``flickr-soundnet`` (docs/datasets.md)."""
from __future__ import annotations

import mcrgraph


@mcrgraph.hookimpl
def register_commands(cli):
    from mcrgraph.cli.datasets import COMMANDS

    for command in COMMANDS.values():
        cli.commands["eval"].add_command(command)
