"""The ``mcrgraph`` command line: a thin layer over the library."""
from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from . import connectors, plugins
from .version import __version__
from .errors import MCRGraphError, UnknownMCRError
from .index import KINDS as INDEX_KINDS
from .items import parse_assignment, read_items
from .methods import METHODS
from .methods.common import PRECISIONS

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


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="mcrgraph")
def cli(debug):
    """Join pretrained multi-modal contrastive models through the modalities they share.

    Spaces (MCRs) come from plugins; `connect` trains a connector that joins two spaces
    through a shared modality into a new space; `plan` and `similarity` compare any two
    modalities through the graph of spaces. Stored connectors and the embedding cache live
    in $MCRGRAPH_HOME (default: the user's cache dir)."""


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    return table


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_cmd(as_json):
    """List plugins, the spaces (MCRs) each provides, and any that failed to load, with why."""
    from .registry import get_mcr

    infos = plugins.list_plugins()
    rows, data, hints = [], [], []
    for info in infos:
        spaces, space_data = [], []
        for name in info.mcrs:
            try:
                m = get_mcr(name)
                present = m.weights_present()
                weights = "" if present is None else ", weights present" if present else ", WEIGHTS MISSING"
                spaces.append(f"{name} ({'/'.join(m.modalities)}, {m.dim}-d{weights})")
                hint = m.weights_hint() if present is False else None
                if hint:
                    hints.append((name, hint))
                space_data.append({"name": name, "modalities": list(m.modalities), "dim": m.dim,
                                   "weights_present": present, "weights_hint": hint, "error": None})
            except MCRGraphError as e:
                spaces.append(f"{name} (unavailable: {e})")
                space_data.append({"name": name, "error": str(e)})
        rows.append([info.name, info.source, "\n".join(spaces) or "-", "ok" if info.error is None else f"FAILED: {info.error}"])
        data.append({"name": info.name, "source": info.source, "mcrs": info.mcrs, "spaces": space_data, "error": info.error})
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    out.print(_table("plugins", ["plugin", "source", "spaces", "status"], rows))
    for name, hint in hints:  # outside the table, so addresses and paths are never cut
        out.print(f"{name}: weights missing; {hint}", soft_wrap=True, highlight=False, markup=False)
    if any(i.error for i in infos):
        debug = click.get_current_context().find_root().params.get("debug")
        for info in infos:
            if debug and info.detail:
                err.print(f"--- {info.name}:\n{info.detail}")
        err.print("some plugins failed to load; the others work" + ("" if debug else " (mcrgraph --debug plugins shows why)"))


@cli.command("graph")
@click.option("--png", type=click.Path(dir_okay=False), help="Also draw the graph to this PNG file (needs matplotlib).")
@click.option("--mermaid", type=click.Path(dir_okay=False, allow_dash=True),
              help="Also write the picture as Mermaid text (for docs and READMEs) to this file; - prints it instead of the tables.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def graph_cmd(png, mermaid, as_json):
    """Show the graph: spaces (plugins and stored connectors) and the modalities they share.

    The picture (--png, --mermaid) has two kinds of node: modalities, and spaces linked to the
    modalities they hold; a connected space points to the two spaces it joins."""
    from .graph import graph

    g = graph().nx
    spaces = [{"name": n, "kind": a["kind"], "modalities": list(a["modalities"]), "dim": a["dim"], "hops": a["hops"],
               "parents": list(a["parents"]), "method": a["method"], "score": a["score"], "missing": a["missing"]} for n, a in g.nodes(data=True)]
    edges = [{"a": u, "b": v, "via": a["via"], "trained": a["trained"]} for u, v, a in g.edges(data=True) if a["kind"] == "overlap"]
    if mermaid:
        from .graph_picture import mermaid as to_mermaid
        from .store import atomic_write_bytes

        text = to_mermaid(g)
        if mermaid != "-":
            atomic_write_bytes(Path(mermaid), text.encode())
            err.print(f"wrote {mermaid}")
    if mermaid == "-":  # the Mermaid text is the output
        click.echo(text, nl=False)
    elif as_json:
        click.echo(json.dumps({"spaces": spaces, "overlaps": edges}, indent=2))
    else:
        out.print(_table("spaces", ["space", "kind", "modalities", "dim", "joins", "val R@1"], [
            [s["name"], (s["kind"] if not s["method"] else f"connector ({s['method']})") + (f"; needs {', '.join(s['missing'])}" if s["missing"] else ""),
             ", ".join(s["modalities"]), str(s["dim"]),
             " + ".join(s["parents"]) or "-", "-" if s["score"] is None else f"{s['score']:.3f}"] for s in spaces]))
        out.print(_table("overlaps (candidate connections)", ["a", "b", "via", "trained"],
                         [[e["a"], e["b"], e["via"], "yes" if e["trained"] else "no"] for e in edges]))
    if png:
        from .drawing import draw_graph

        draw_graph(g, png)
        err.print(f"wrote {png}")


def _config_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@cli.command("connect")
@click.argument("a")
@click.argument("b")
@click.option("--via", required=True, help="The modality both spaces have, e.g. text.")
@click.option("--items", "items", type=click.Path(), help="Items of the via modality: for text a file with one caption per line; "
              "for media a folder or a file of paths. Default: items a plugin offers.")
@click.option("--memory", multiple=True, metavar="MOD=FILE", help="Unpaired items of a non-shared modality (repeatable; MOD may be pinned: image@clip).")
@click.option("--method", type=click.Choice(sorted(METHODS)), default="c-mcr", show_default=True,
              help="c-mcr: a new space joining A and B; ex-mcr: extend leaf B into base A, which stays exactly as it is.")
@click.option("--name", help="Name of the new space (default: A+B for c-mcr, B-into-A for ex-mcr).")
@click.option("--epochs", type=int, help="Training epochs (method default if omitted).")
@click.option("--batch-size", type=int, help="Via items per step.")
@click.option("--lr", type=float, help="Learning rate.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--device", help="Torch device, e.g. cpu or cuda.")
@click.option("--precision", type=click.Choice(PRECISIONS), help="Compute type of the training steps (mixed precision; weights stay float32). Default fp32.")
@click.option("--preset", type=click.Choice(["mcrgraph", "paper"]), help="paper: the published method exactly; mcrgraph (default): "
              "with the techniques that keep each encoder's knowledge (bridging, both-sides via; docs/architecture.md).")
@click.option("--set", "options", multiple=True, metavar="KEY=VALUE", help="Any other method option, e.g. --set intra_weight=0.5 (docs/architecture.md lists them).")
@click.option("--overwrite", is_flag=True, help="Replace a stored connector of the same name.")
@click.option("--resume", is_flag=True, help="Continue a killed run of the same command from its last checkpoint.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="With no --items: take N items per role from the default recipe's corpora (default: the recipe's own, see docs/real-encoders.md).")
@click.option("--dry-run", is_flag=True, help="Print what the default recipe would download, and about how much, then stop.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@click.option("--official", is_flag=True, help="Instead of training, download the papers' released heads for this pair (C-MCR: "
              "clip+clap via text, clip+ulip via image; Ex-MCR: clap or ulip into clip), check them, and import them.")
def connect_cmd(a, b, via, items, memory, method, name, epochs, batch_size, lr, seed, device, precision, preset, options, overwrite, resume, limit,
                dry_run, progress, official):
    """Train a connector between spaces A and B through the modality they share, and store the
    connected space: a space that covers the modalities of both (with --method ex-mcr, A's
    own coordinates, B mapped into them).

    \b
    Example:
      mcrgraph connect clip clap --via text --items captions.txt \\
          --memory image=images/ --memory audio=sounds/
      mcrgraph connect clip clap --via text --official"""
    if official:
        training = [flag for flag, value in (("--items", items), ("--memory", memory), ("--epochs", epochs), ("--batch-size", batch_size),
                                             ("--lr", lr), ("--seed", seed), ("--set", options), ("--resume", resume),
                                             ("--limit", limit), ("--preset", preset)) if value]
        if training:
            raise click.UsageError(f"--official imports the released heads and trains nothing; drop {', '.join(training)}")
        from .official import connect_official, official_kind, official_url

        if dry_run:
            kind = official_kind(a, b, via, method)[0]
            out.print(f"would download {official_url(kind)} (checked against its git blob id) and import it as {kind}")
            return
        space = connect_official(a, b, via=via, method=method, name=name, overwrite=overwrite, progress=progress)
        out.print(f"stored connector {space.name} (the official {space.card.method} heads; {' + '.join(space.parent_names())}; "
                  f"{'/'.join(space.modalities)}; {space.dim}-d) in {space.folder}")
        return
    from . import corpora
    from .connect import connect

    if dry_run:
        return _dry_run(a, b, via, method, limit, bool(items), bool(memory))
    cfg = {k: _config_value(v) for k, v in (parse_assignment(o, "--set") for o in options)}
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("seed", seed), ("device", device), ("precision", precision),
                       ("preset", preset)):
        if value is not None:
            cfg[key] = value
    mems = None
    if memory:
        mems = {}
        for m in memory:
            mod, path = parse_assignment(m, "--memory")
            mems[mod] = read_items(path, mod.split("@")[0])
    via_items = read_items(items, via) if items else None
    with corpora.options(limit=limit, progress=progress):
        space = connect(a, b, via=via, items=via_items, memories=mems, method=method, name=name, config=cfg, overwrite=overwrite,
                        resume=resume, progress=progress)
    _report_connected(space)


def _dry_run(a: str, b: str, via: str, method: str, limit: int | None, items_given: bool, memory_given: bool) -> None:
    """What `connect` with no --items would fetch from the default recipe, and about how much."""
    from .corpora import fetch_plan, human, leaf_space
    from .recipes import find
    from .registry import get_mcr

    space_a, space_b = get_mcr(a), get_mcr(b)
    plan = fetch_plan(space_a, space_b, via, limit)
    if not plan:
        out.print(f"no default recipe for {a} and {b} via {via}: nothing would be downloaded (give --items FILE)")
        return
    recipe = find(leaf_space(space_a, via), leaf_space(space_b, via), via, method)
    if recipe is not None:
        out.print(f"default recipe: {recipe.name} (as in the {recipe.paper} paper; docs/real-encoders.md)", markup=False)
    total = 0
    for what, estimates in plan:
        given = items_given if "via items" in what else memory_given
        if given:
            out.print(f"{what}: given on the command line, nothing downloaded")
            continue
        out.print(f"{what}:", markup=False)
        for e in estimates:
            out.print(f"  {e.line()}", markup=False, soft_wrap=True)
            total += e.bytes
    if len(plan) == 1 and not memory_given:
        out.print("memories: the recipe has none for both sides, so none are used (give --memory MOD=FILE for each side)", markup=False)
    out.print(f"in all about {human(total)} to download; the cache ($MCRGRAPH_HOME/corpora) keeps it for later runs", markup=False)


def _report_connected(space) -> None:
    out.print(f"stored connector {space.name} ({space.card.method}; {'/'.join(space.modalities)}; {space.dim}-d) in {space.folder}")
    metrics = space.card.metrics
    if "val_r1" in metrics:
        out.print(f"held-out {space.card.via} retrieval across the two spaces ({int(metrics['val_items'])} items): "
                  f"R@1 {metrics['val_r1']:.3f}, R@5 {metrics['val_r5']:.3f} (chance R@1 {1 / metrics['val_items']:.3f})")
    for tables in plugins.hook().evaluate_space(space=space):
        for title, rows in (tables or {}).items():
            out.print(result_table(title, rows))


@cli.command("import-official")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--kind", required=True, type=click.Choice(["clap-clip", "ulip-clip", "ex-clap", "ex-ulip"]),
              help="Which official checkpoint FILE is: clap_clip.pt, ulip_clip.pt (C-MCR), ex_clap.pt, ex_ulip.pt (Ex-MCR).")
@click.option("--name", help="Name of the stored connector (default: clip+clap, clip+ulip, clap-into-clip, ulip-into-clip).")
@click.option("--clip", "clip", default="clip", show_default=True, help="The installed CLIP space (ViT-B/32, OpenAI weights) the heads were trained on.")
@click.option("--leaf", help="The installed CLAP or ULIP space (default: clap or ulip, by --kind).")
@click.option("--overwrite", is_flag=True, help="Replace a stored connector of the same name.")
def import_official_cmd(file, kind, name, clip, leaf, overwrite):
    """Store an official C-MCR / Ex-MCR checkpoint (heads keyed Head_A/Head_B or Head1/Head2,
    read with weights_only=True, never unpickled) as a connector of this library's format,
    with a card saying where it came from.

    \b
    Example:
      mcrgraph import-official clap_clip.pt --kind clap-clip
      mcrgraph similarity --audio dog.wav --image dog.jpg"""
    from .official import import_official

    space = import_official(file, kind, name=name, clip=clip, leaf=leaf, overwrite=overwrite)
    out.print(f"stored connector {space.name} ({space.card.method}; {' + '.join(space.parent_names())}; "
              f"{'/'.join(space.modalities)}; {space.dim}-d) in {space.folder}")


@cli.command("download")
@click.argument("spaces", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Only list the files: what, from where, to where, how big, already here or not.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
def download_cmd(spaces, dry_run, progress):
    """Fetch the weights (and tokenizers) that the named spaces' plugins declare, into the
    places the plugins read them from, so that this machine can work offline afterwards.
    SPACES: clip, clap, ulip (any installed space whose plugin declares files), or all.

    \b
    Example:
      mcrgraph download all --dry-run
      mcrgraph download clip clap && mcrgraph plugins"""
    from .download import human_size
    from .encoder_weights import download_weights, plan_downloads

    if dry_run:  # lines, not a table: addresses and paths are never cut
        planned = plan_downloads(list(spaces), with_sizes=True)
        for p in planned:
            d = p.download
            out.print(f"{p.space}: {d.what}, {human_size(p.size)}, {f'here: {p.local}' if p.local else 'to download'}\n"
                      f"  from {d.address()}\n  to   {d.dest or 'the Hugging Face cache (' + (d.cache_dir or 'its default folder') + ')'}"
                      + (f"\n  licence: {d.licence}" if d.licence else ""), soft_wrap=True, markup=False)
        left = [p for p in planned if not p.local]
        unknown = sum(p.size is None for p in left)
        out.print(f"{len(left)} of {len(planned)} files to download" + (f", {human_size(sum(p.size or 0 for p in left))}" if left else "")
                  + (f" and {unknown} of unknown size (offline?)" if unknown else ""))
        return

    def done(p):
        out.print(f"{p.space}: {p.download.what} -> {p.local}", soft_wrap=True, markup=False)

    download_weights(list(spaces), progress=progress, on_file=done)
    out.print("done; `mcrgraph plugins` shows the weights present")


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def result_table(title: str, rows) -> Table:
    """``{row: {column: value}}`` as a table; floats with three decimals."""
    columns = list(dict.fromkeys(c for r in reversed(rows.values()) for c in r))  # a first row (chance) may lack some
    table = _table(title, ["", *columns], [[name, *(_cell(r.get(c, "")) for c in columns)] for name, r in rows.items()])
    for col in table.columns[1:]:
        col.justify = "right"
    return table


@cli.group("eval")
def eval_group():
    """Evaluate spaces and connectors on a held-out benchmark: `mcrgraph eval mini` (the
    bundled world). Plugins add benchmarks here."""


def _connect_flag(f):
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


@cli.command("plan")
@click.argument("a")
@click.argument("b")
@_connect_flag
@click.option("--epochs", type=int, help="With --connect: training epochs of each connect (method default if omitted).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="With --connect: show progress bars.")
def plan_cmd(a, b, join_first, epochs, progress):
    """Show which space compares modalities A and B (e.g. audio, or audio@clap), through which
    chain of connectors. When none does yet, list the connect commands that would create one
    (or, with --connect, run them)."""
    from .graph import graph

    options = {"epochs": epochs} if epochs is not None else {}
    click.echo(planned(graph(), a, b, join_first, progress=progress, **options).describe())


def _pairs(args: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in _modality_flags(args, "--audio dog.wav --image dog.png"):
        found.setdefault(key, []).append(value)
    if len(found) != 2:
        raise click.UsageError(f"give items of exactly two modalities, e.g. --audio a.wav --image b.png (got {', '.join(found) or 'none'})")
    return found


@cli.command("similarity", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@_connect_flag
@click.pass_context
def similarity_cmd(ctx, join_first):
    """Cosine similarity between items of two modalities: --MOD ITEM --MOD ITEM.

    Repeat a flag for more items; MOD may be pinned to a space (--text@clip "a dog").

    \b
    Example:
      mcrgraph similarity --audio bark.wav --image dog.png --image cat.png"""
    from .graph import graph

    (ma, ia), (mb, ib) = _pairs(list(ctx.args)).items()
    g = graph()
    path = planned(g, ma, mb, join_first)
    sim = g.similarity(ma, ia, mb, ib, path=path)
    out.print(f"path: {path.describe()}")
    table = Table(title_justify="left")
    table.add_column(f"{ma} \\ {mb}")
    for item in ib:
        table.add_column(item, justify="right")
    for item, row in zip(ia, sim.tolist()):
        table.add_row(item, *(f"{v:.4f}" for v in row))
    out.print(table)


@cli.group("connectors", cls=Group, invoke_without_command=True)
@click.pass_context
def connectors_cmd(ctx):
    """List stored connectors; `show NAME` prints a card, `remove NAME` deletes one."""
    if ctx.invoked_subcommand is not None:
        return
    from .store import connectors_dir

    good, bad = connectors.list_cards()
    rows = [[n, c.method, " + ".join(s.name for s in c.spaces), c.via, "/".join(c.modalities),
             "-" if c.score() is None else f"{c.score():.3f}", c.created.strftime("%Y-%m-%d %H:%M")] for n, (_, c) in good.items()]
    out.print(_table(f"connectors in {connectors_dir()}", ["name", "method", "joins", "via", "modalities", "val R@1", "created"], rows))
    for folder, why in bad.items():
        err.print(f"unreadable connector {folder}: {why}")


def _existing(name: str):
    folder = connectors.connector_path(name)
    if not folder.is_dir():
        raise UnknownMCRError(f"no stored connector named {name!r} (see: mcrgraph connectors)")
    return folder


@connectors_cmd.command("show")
@click.argument("name")
def connectors_show(name):
    """Print connector NAME's card (JSON)."""
    click.echo(connectors.read_card(_existing(name)).model_dump_json(indent=2))


@connectors_cmd.command("remove")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def connectors_remove(name, yes):
    """Delete stored connector NAME."""
    _existing(name)
    if not yes:
        click.confirm(f"remove connector {name!r}?", abort=True)
    click.echo(f"removed {connectors.remove(name)}")


def _plugin_commands() -> None:
    """Let each plugin add commands; one that fails is reported by `mcrgraph plugins`."""
    st = plugins.state()
    for impl in st.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as e:  # noqa: BLE001
            info = st.plugins.get(impl.plugin_name)
            if info is not None:
                info.error = f"register_commands failed: {type(e).__name__}: {e}"
                info.detail = traceback.format_exc()


_plugin_commands()


def main() -> None:
    cli(prog_name="mcrgraph")


# -- tasks: zero-shot classification and retrieval (mcrgraph/tasks.py) ------------------------


def _modality_flags(args: list[str], example: str) -> list[tuple[str, str]]:
    """``--MOD ITEM`` / ``--MOD=ITEM`` pairs, in order (like ``_pairs``, any number of modalities)."""
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


def _expand_items(modality: str, value: str) -> list[str]:
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


@cli.command("classify", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--labels", "labels_file", type=click.Path(), metavar="FILE", help="Labels, one per line (no blank or repeated lines).")
@click.option("--label", "label_list", multiple=True, metavar="LABEL", help="A label (repeatable; adds to --labels).")
@click.option("--template", "templates", multiple=True, metavar="TEXT",
              help="Prompt with {} where the label goes, e.g. \"a point cloud of a {}\" (repeatable: each label's text is "
                   "the mean over templates). Default: \"a {}\".")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Labels shown per item.")
@click.option("--logit-scale", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Cosine similarities are multiplied by this before the softmax (CLIP's 100).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars while encoding.")
@_connect_flag
@click.pass_context
def classify_cmd(ctx, labels_file, label_list, templates, top, logit_scale, as_json, progress, join_first):
    """Zero-shot classification: the most probable labels of items of any modality, through the
    space where it meets text (one space, or connected ones). Items: --MODALITY ITEM, repeatable
    (MODALITY may be pinned: --image@clip). Probabilities are a softmax over the labels.

    \b
    Example:
      mcrgraph classify --3d chair.ply --3d scans/ --labels labels.txt \\
          --template "a point cloud of a {}" --template "a 3D model of a {}"

    An ITEM may be a folder (its files), @list.txt (one item per line; for text, one caption
    per line) or @@x for an item that starts with @."""
    from rich.text import Text

    from .graph import graph
    from .tasks import check_labels, classify, read_labels

    flags = _modality_flags(list(ctx.args), "--3d chair.ply")
    modalities = list(dict.fromkeys(k for k, _ in flags))
    if len(modalities) != 1:
        raise click.UsageError("give the items to classify as --MODALITY ITEM, all of one modality (e.g. --3d chair.ply --3d table.ply); "
                               f"got {', '.join(modalities) or 'none'}")
    modality = modalities[0]
    items = [it for _, value in flags for it in _expand_items(modality, value)]
    if not labels_file and not label_list:
        raise click.UsageError("give the labels: --labels FILE (one per line) or --label NAME, repeated")
    labels = check_labels((read_labels(labels_file) if labels_file else []) + list(label_list))
    g = graph()
    path = planned(g, modality, "text", join_first, progress=progress)
    results = classify(modality, items, labels, templates=list(templates) or None, top=top, path=path,
                       logit_scale=logit_scale, graph=g, progress=progress)
    if as_json:
        click.echo(json.dumps({"path": path.describe(), "modality": modality, "labels": len(labels), "results": [
            {"item": r.item, "labels": [{"label": lab, "probability": p} for lab, p in r.ranked]} for r in results]}, indent=2))
        return
    out.print(f"path: {path.describe()}")
    for r in results:
        out.print(Text(f"{modality} {r.item}", style="bold"))
        table = Table()
        table.add_column("label")
        table.add_column("probability", justify="right")
        for lab, p in r.ranked:
            table.add_row(Text(lab), f"{p:.4f}")
        out.print(table)


def _search_flags(flags: list[tuple[str, str]], known: set[str]) -> tuple[str, list[str], str, list[str]]:
    """Split ``--MOD ITEM`` flags into the query modality and the gallery modality: a gallery flag
    is ``--gallery-MOD`` or the plural ``--MODs`` (when MOD is a modality and MODs is not)."""
    from .errors import UnknownModalityError

    queries: dict[str, list[str]] = {}
    gallery: dict[str, list[str]] = {}
    for key, value in flags:
        base, at, pin = key.partition("@")
        if base.startswith("gallery-"):
            gallery.setdefault(base[len("gallery-"):] + at + pin, []).append(value)
        elif base not in known and base.endswith("s") and base[:-1] in known:
            gallery.setdefault(base[:-1] + at + pin, []).append(value)
        elif base not in known:
            raise UnknownModalityError(f"--{key}: no space has modality {base!r}; known modalities: {', '.join(sorted(known)) or 'none'} "
                                       "(a gallery flag is the plural, e.g. --images, or --gallery-MODALITY)")
        else:
            queries.setdefault(key, []).append(value)
    example = "e.g. --audio q.wav --images photos/"
    if len(queries) != 1:
        raise click.UsageError(f"give the queries as --MODALITY ITEM, all of one modality ({example}); got {', '.join(queries) or 'none'}")
    if len(gallery) != 1:
        raise click.UsageError("give the gallery as --MODALITYs DIR|@list.txt (plural: --images, --texts, --audios) or "
                               f"--gallery-MODALITY DIR|@list.txt, all of one modality ({example}); got {', '.join(gallery) or 'none'}")
    (qm, qv), (gm, gv) = next(iter(queries.items())), next(iter(gallery.items()))
    return qm, [it for v in qv for it in _expand_items(qm, v)], gm, [it for v in gv for it in _expand_items(gm, v)]


@cli.command("search", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Gallery items shown per query.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--png", type=click.Path(dir_okay=False), help="Also draw a grid (a row per query, its best matches left to right; "
              "image files as thumbnails) to this PNG file; needs matplotlib.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars while encoding.")
@click.option("--index", "index", type=click.Choice(list(INDEX_KINDS)), default="exact", show_default=True,
              help="How the gallery is scanned: exact float32, a half-precision copy, or FAISS (pip install 'mcrgraph[faiss]'): "
              "its exact scan, IVF cells, IVF cells with compressed rows (ivfpq: 1 byte per 8 dims), an 8-bit copy (sq8) or "
              "an HNSW graph. All but exact and faiss-flat are approximate.")
@click.option("--rerank", type=click.IntRange(min=1), default=None, metavar="N",
              help="With an approximate --index: score its first N candidates per query exactly (float32) and keep the "
              "best --top. Buys back recall (ivfpq's compressed rows lose most of it); the float32 gallery is kept.")
@_connect_flag
@click.pass_context
def search_cmd(ctx, top, as_json, png, progress, index, rerank, join_first):
    """Retrieval: rank a gallery of one modality for queries of another (or the same), through
    the space where the two meet (one space, or connected ones).

    \b
    Queries: --MODALITY ITEM, repeatable (e.g. --audio q.wav).
    Gallery: the plural flag --MODALITYs SOURCE (--images, --texts, --audios, --3ds) or,
    for any modality, --gallery-MODALITY SOURCE (--gallery-3d); repeatable. Either may be
    pinned to a space: --text@clip, --images@clip.

    \b
    Example:
      mcrgraph search --audio q.wav --images photos/ --top 10 --png grid.png
      mcrgraph search --image dog.png --texts @captions.txt

    An ITEM or SOURCE may be a folder (its files), @list.txt (one item per line; for text, one
    caption per line) or @@x for an item that starts with @. Gallery embeddings are cached, so
    searching the same gallery again does not encode it again."""
    from rich.text import Text

    from .graph import graph
    from .tasks import search

    g = graph()
    known = {m for _, a in g.nx.nodes(data=True) for m in a["modalities"]}
    qm, queries, gm, gallery = _search_flags(_modality_flags(list(ctx.args), "--audio q.wav --images photos/"), known)
    path = planned(g, qm, gm, join_first, progress=progress)
    results = search(qm, queries, gm, gallery, top=top, path=path, graph=g, progress=progress, index=index, rerank=rerank)
    if png:
        from .drawing import draw_retrieval

        draw_retrieval(queries, results, png, title=path.describe())
        err.print(f"wrote {png}")
    if as_json:
        click.echo(json.dumps({"path": path.describe(), "query_modality": qm, "gallery_modality": gm, "gallery": len(gallery), "results": [
            {"query": q, "hits": [{"rank": r, "index": h.index, "item": h.item, "score": h.score} for r, h in enumerate(hits, 1)]}
            for q, hits in zip(queries, results)]}, indent=2))
        return
    out.print(f"path: {path.describe()}")
    for q, hits in zip(queries, results):
        out.print(Text(f"{qm} {q}: best {len(hits)} of {len(gallery)} {gm} items", style="bold"))
        table = Table()
        table.add_column("rank", justify="right")
        table.add_column("score", justify="right")
        table.add_column("item")
        for r, h in enumerate(hits, 1):
            table.add_row(str(r), f"{h.score:.4f}", Text(str(h.item)))
        out.print(table)


# -- localization heat maps (mcrgraph/localize.py) ------------------------------------------


@cli.command("localize", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--png", type=click.Path(dir_okay=False), help="Draw the heat map over the image to this PNG file (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with every patch's score).")
@click.pass_context
def localize_cmd(ctx, png, as_json):
    """Where in an image a query is: the query's cosine similarity with each patch of the
    image, through the space where the two meet (one space, or connected ones). Needs a space
    with dense (patch-level) image features, such as mini-clip or mini-ulip.

    \b
    Query: --MODALITY ITEM, once (e.g. --audio a.wav, --text "a dog"; may be pinned: --text@clip).
    Image: --image ITEM, once (may be pinned: --image@mini-clip).

    \b
    Example:
      mcrgraph localize --audio a.wav --image b.jpg --png out.png
      mcrgraph localize --text "a handwritten seven" --image mini:heldout/image/800"""
    from rich.text import Text

    from .graph import graph
    from .localize import localize, picture

    flags = _modality_flags(list(ctx.args), "--audio a.wav --image b.jpg")
    images = [(k, v) for k, v in flags if k.split("@")[0] == "image"]
    queries = [(k, v) for k, v in flags if k.split("@")[0] != "image"]
    if len(images) != 1 or len(queries) != 1:
        raise click.UsageError("give one query and one image: --MODALITY ITEM --image ITEM (e.g. --audio a.wav --image b.jpg); "
                               f"got {len(queries)} query and {len(images)} image flags")
    (qm, query), (im, image) = queries[0], images[0]
    hm = localize(qm, query, image, image_modality=im, graph=graph())
    row, col, best = hm.peak
    h, w = hm.scores.shape
    if png:
        from .drawing import draw_heatmap

        def short(x):
            return os.path.basename(x) if os.path.exists(x) else x if len(x) <= 40 else x[:39] + "…"

        draw_heatmap(picture(image), hm.scores, png, title=f"{qm} {short(query)} on {short(image)}\n{hm.path.describe()}")
        err.print(f"wrote {png}")
    if as_json:
        click.echo(json.dumps({"path": hm.path.describe(), "space": hm.space, "query_modality": qm, "query": query, "image": image,
                               "grid": [h, w], "peak": {"row": row, "col": col, "score": best}, "score": hm.score,
                               "scores": [[round(v, 6) for v in r] for r in hm.scores.tolist()]}, indent=2))
        return
    out.print(f"path: {hm.path.describe()}")
    out.print(Text(f"peak: row {row}, column {col} of the {h}x{w} grid (0, 0 is the top left), cosine {best:.4f}; "
                   f"whole image {hm.score:.4f}; lowest patch {float(hm.scores.min()):.4f}"))
    table = Table(title=Text(f"{qm} {query} vs each patch of {image}"), title_justify="left")
    table.add_column("")
    for c in range(w):
        table.add_column(str(c), justify="right")
    for r, values in enumerate(hm.scores.tolist()):
        table.add_row(str(r), *(Text(f"{v:.3f}", style="bold" if (r, c) == (row, col) else "") for c, v in enumerate(values)))
    out.print(table)
