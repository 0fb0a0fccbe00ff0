"""What the command line's modules share: the consoles, the error-to-message group, tables,
``--MODALITY ITEM`` flags and ``--connect`` (joining on demand before answering)."""
from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.table import Table

from ..errors import MCRGraphError
from ..io.items import read_items

out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)  # tables stay whole in logs
err = Console(stderr=True, highlight=False)


class Group(click.Group):
    """Turns errors into one clear line and a non-zero exit; ``--debug`` shows the traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            err.print("interrupted")
            raise click.exceptions.Exit(130) from None
        except Exception as e:  # noqa: BLE001 - the one place errors become messages
            if ctx.find_root().params.get("debug") or os.environ.get("MCRGRAPH_DEBUG", "") not in ("", "0"):
                raise
            if isinstance(e, MCRGraphError):
                raise click.ClickException(str(e)) from None
            raise click.ClickException(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)") from None


def seed_list(seeds: str) -> list[int]:
    """``--seeds 0,1,2`` as whole numbers, at least one (every eval command takes it)."""
    try:
        out = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"seeds are whole numbers separated by commas, got {seeds!r}", param_hint="--seeds") from None
    if not out:
        raise click.BadParameter("give at least one seed", param_hint="--seeds")
    return out


def table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*r)
    return t


def cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def result_table(title: str, rows) -> Table:
    """``{row: {column: value}}`` as a table; floats with three decimals."""
    columns = list(dict.fromkeys(c for r in reversed(rows.values()) for c in r))  # a first row (chance) may lack some
    t = table(title, ["", *columns], [[name, *(cell(r.get(c, "")) for c in columns)] for name, r in rows.items()])
    for col in t.columns[1:]:
        col.justify = "right"
    return t


def connect_flag(f):
    return click.option("--connect", "join_first", is_flag=True,
                        help="When no space covers the two modalities yet, first run the cheapest chain of connects on default items "
                        "(each step printed), then answer through it.")(f)


def planned(g, a: str, b: str, join_first: bool, progress: bool = True, **options):
    """``g.plan(a, b)``, joining on demand first with ``join_first`` (printing each step)."""
    if not join_first:
        return g.plan(a, b)

    def step(i, n, s):
        err.print(f"step {i + 1}/{n}: {s.command()}", markup=False, highlight=False)

    path = g.plan(a, b, connect=True, on_step=step, progress=progress, **options)
    return path


def modality_flags(args: list[str], example: str) -> list[tuple[str, str]]:
    """``--MOD ITEM`` / ``--MOD=ITEM`` pairs, in order (any number of modalities)."""
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if not tok.startswith("--") or len(tok) < 3:
            raise click.UsageError(f"expected --MODALITY ITEM, got {tok!r} (e.g. {example})")
        key, sep, value = tok[2:].partition("=")
        if key == "debug":
            raise click.UsageError("--debug goes before the command: mcrgraph --debug ...")
        if not sep:
            if i + 1 >= len(args):
                raise click.UsageError(f"{tok} needs an item (e.g. {example})")
            value, i = args[i + 1], i + 1
        found.append((key, value))
        i += 1
    return found


def expand_items(modality: str, value: str) -> list[str]:
    """An item as given on the command line: ``@FILE`` reads an items file (for text one caption
    per line, else one path per line), a folder means its files (not for text), ``@@x`` is the
    literal item ``@x``, anything else is one item."""
    base = modality.split("@")[0]
    if value.startswith("@@"):
        return [value[1:]]
    if value.startswith("@"):
        return read_items(value[1:], base)
    if base != "text" and os.path.isdir(value):
        return read_items(value, base)
    return [value]
