"""``mcrgraph eval DATASET``: one click command per benchmark in BENCHMARKS."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..datasets import BENCHMARKS, Benchmark
from ..datasets.common import Report, Scorer
from ..datasets.modelnet import TEMPLATES


def markdown(report: Report, command: str) -> str:
    lines = [f"# {report.dataset}", "", f"`{command}`", ""]
    for k, v in report.info.items():
        lines += [f"- {k}:"] + [f"  - {a}: {b}" for a, b in v.items()] if isinstance(v, dict) else [f"- {k}: {v}"]
    lines.append("")
    for title, rows in report.tables.items():
        cols = list(dict.fromkeys(c for r in reversed(rows.values()) for c in r))
        lines += [f"## {title}", "", "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for row, m in rows.items():
            lines.append(f"| {row} | " + " | ".join(f"{m[c]:.3f}" if isinstance(m.get(c), float) else str(m.get(c, "-")) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


def write(report: Report, out: str | Path, name: str, command: str) -> list[Path]:
    """``OUT/NAME.json`` and ``OUT/NAME.md``, each written atomically."""
    from ..store.disk import atomic_write_bytes

    out = Path(out)
    data = {"dataset": report.dataset, "command": command, "info": report.info, "tables": report.tables}
    paths = [out / f"{name}.json", out / f"{name}.md"]
    atomic_write_bytes(paths[0], json.dumps(data, indent=2).encode())
    atomic_write_bytes(paths[1], markdown(report, command).encode())
    return paths


def run(bench: Benchmark, root, space=None, path=None, limit=None, progress=False, **options) -> Report:
    """Load the split under ``root`` and evaluate it; the report's info gains the paths used."""
    split = bench.load(root, limit=limit)
    scorer = Scorer.make(space=space, path=path, progress=progress)
    start = time.time()
    report = bench.evaluate(split, scorer, **options)
    report.info |= {"paths": dict(scorer.paths), "seconds": round(time.time() - start, 1)}
    return report


def make_command(bench: Benchmark) -> click.Command:
    a, b = bench.modalities
    example = f"mcrgraph eval {bench.name} --root ~/data/{bench.name} --out results/"

    def callback(root, space, path, limit, out, progress, **options):
        from rich.console import Console

        from .main import result_table

        console = Console(highlight=False)
        report = run(bench, root, space=space, path=path, limit=limit, progress=progress, **options)
        for pair, described in report.info["paths"].items():
            console.print(f"path: {described}")
        for title, rows in report.tables.items():
            console.print(result_table(title, rows))
        facts = {k: v for k, v in report.info.items() if k != "paths"}
        console.print("; ".join(f"{k}: {v}" for k, v in facts.items()))
        if out:
            ctx = click.get_current_context()
            command = " ".join(["mcrgraph", *ctx.command_path.split()[1:], *_argv(ctx)])
            paths = write(report, out, bench.name, command)
            console.print(f"wrote {paths[0]} and {paths[1]}")

    params = [
        click.Option(["--root"], required=True, type=click.Path(), help=f"The dataset folder, holding {bench.layout}."),
        click.Option(["--space"], metavar="NAME", help=f"Compare {a} and {b} inside this one space (a plugin space or a stored connector)."),
        click.Option(["--path"], nargs=2, metavar="FROM TO", default=None,
                     help=f"The modalities to plan with, pinned as you like (e.g. {a}@SPACE {b}@SPACE); default: the planner's choice."),
        click.Option(["--limit"], type=click.IntRange(min=1), help="Only the first N test items (a quick check; not comparable to published numbers)."),
        click.Option(["--out"], type=click.Path(file_okay=False), help=f"Also write {bench.name}.json and {bench.name}.md to this folder."),
        click.Option(["--progress/--no-progress"], default=True, help="Progress bars while encoding."),
    ]
    if bench.name == "modelnet40":
        params += [
            click.Option(["--template", "templates"], multiple=True, default=TEMPLATES, show_default=True,
                         help="A prompt with {} where the class name goes; repeatable (a class's text is the mean over templates)."),
            click.Option(["--points", "n_points"], type=click.IntRange(min=1), default=1024, show_default=True,
                         help="Points sampled from each shape (ULIP's PointBERT takes 8192)."),
        ]
    if bench.name == "ave":
        params.append(click.Option(["--seed"], type=int, default=0, show_default=True,
                                   help="Seed for the one mismatched audio drawn per video (counterfactual recognition)."))
    help_text = (f"{bench.title}: {bench.task}.\n\n--root holds {bench.layout}; see docs/datasets.md for where to get it "
                 f"and the exact layout. Source: {bench.source}.\n\nExample:\n\n    {example}")
    if bench.name in ("vggss", "flickr-soundnet"):
        help_text += "\n\nNeeds a space with dense (patch-level) image features (MCR.encode_dense)."
    return click.Command(bench.name, callback=callback, params=params, help=help_text,
                         short_help=f"{bench.title}: {bench.task.split(' (')[0]}.", no_args_is_help=True)


def _argv(ctx: click.Context) -> list[str]:
    out = []
    for p in ctx.command.params:
        v = ctx.params.get(p.name)
        if v in (None, (), False) or p.name == "progress":
            continue
        if isinstance(v, tuple) and p.multiple:
            out += [x for t in v for x in (p.opts[0], repr(t) if " " in t else t)]
        elif isinstance(v, tuple):
            out += [p.opts[0], *map(str, v)]
        else:
            out += [p.opts[0], str(v)]
    return out


COMMANDS = {name: make_command(bench) for name, bench in BENCHMARKS.items()}
