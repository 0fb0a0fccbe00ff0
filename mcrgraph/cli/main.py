"""The ``mcrgraph`` command line: a thin layer over the library."""
from __future__ import annotations

import dataclasses
import json
import traceback
from pathlib import Path

import click

from ..spaces import plugins
from ..store import connectors
from ..version import __version__
from . import queries, serve
from .common import Group, connect_flag, err, out, planned, result_table, seed_list, table
from ..errors import EncoderError, MCRGraphError, UnknownMCRError
from ..io.items import parse_assignment, read_items
from ..methods import METHODS
from ..methods.common import PRECISIONS

__all__ = ["cli", "main", "result_table", "seed_list"]  # result_table, seed_list: for plugins' eval commands


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="mcrgraph")
def cli(debug):
    """Join pretrained multi-modal contrastive models through the modalities they share.

    Spaces (MCRs) come from plugins; `connect` trains a connector that joins two spaces
    through a shared modality into a new space; `plan` and `similarity` compare any two
    modalities through the graph of spaces. Stored connectors and the embedding cache live
    in $MCRGRAPH_HOME (default: the user's cache dir)."""


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True, help="Also load each space whose weights are here and encode one sample item of each of "
              "its modalities (exit status 1 if one fails).")
def plugins_cmd(as_json, check):
    """List plugins, the spaces (MCRs) each provides, and any that failed to load, with why."""
    from ..spaces.probe import check_space
    from ..spaces.registry import get_mcr

    infos = plugins.list_plugins()
    rows, data, hints, checks = [], [], [], []
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
                if check and present:  # a space whose weights are missing would start downloading them
                    checks.append((name, check_space(m)))
                    space_data[-1]["check"] = [dataclasses.asdict(p) for p in checks[-1][1]]
            except MCRGraphError as e:
                spaces.append(f"{name} (unavailable: {e})")
                space_data.append({"name": name, "error": str(e)})
        rows.append([info.name, info.source, "\n".join(spaces) or "-", "ok" if info.error is None else f"FAILED: {info.error}"])
        data.append({"name": info.name, "source": info.source, "mcrs": info.mcrs, "spaces": space_data, "error": info.error})
    if as_json:
        click.echo(json.dumps(data, indent=2))
        _exit_if_failed(checks)
        return
    out.print(table("plugins", ["plugin", "source", "spaces", "status"], rows))
    for name, hint in hints:  # outside the table, so addresses and paths are never cut
        out.print(f"{name}: weights missing; {hint}", soft_wrap=True, highlight=False, markup=False)
    _print_checks(checks)
    if check and not checks:
        out.print("no space has weights here to check (spaces without weights of their own are not checked)")
    if any(i.error for i in infos):
        debug = click.get_current_context().find_root().params.get("debug")
        for info in infos:
            if debug and info.detail:
                err.print(f"--- {info.name}:\n{info.detail}")
        err.print("some plugins failed to load; the others work" + ("" if debug else " (mcrgraph --debug plugins shows why)"))
    _exit_if_failed(checks)


def _print_checks(checks) -> None:
    from ..spaces.probe import summary

    for name, probes in checks:
        out.print(summary(name, probes), soft_wrap=True, highlight=False, markup=False)


def _exit_if_failed(checks) -> None:
    if any(p.ok is False for _, probes in checks for p in probes):
        raise click.exceptions.Exit(1)


@cli.command("graph")
@click.option("--png", type=click.Path(dir_okay=False), help="Also draw the graph to this PNG file (needs matplotlib).")
@click.option("--mermaid", type=click.Path(dir_okay=False, allow_dash=True),
              help="Also write the picture as Mermaid text (for docs and READMEs) to this file; - prints it instead of the tables.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def graph_cmd(png, mermaid, as_json):
    """Show the graph: spaces (plugins and stored connectors) and the modalities they share.

    The picture (--png, --mermaid) has two kinds of node: modalities, and spaces linked to the
    modalities they hold; a connected space points to the two spaces it joins."""
    from ..planning.graph import graph, summary

    g = graph().nx
    data = summary(g)
    spaces, edges = data["spaces"], data["overlaps"]
    if mermaid:
        from ..planning.picture import mermaid as to_mermaid
        from ..store.disk import atomic_write_bytes

        text = to_mermaid(g)
        if mermaid != "-":
            atomic_write_bytes(Path(mermaid), text.encode())
            err.print(f"wrote {mermaid}")
    if mermaid == "-":  # the Mermaid text is the output
        click.echo(text, nl=False)
    elif as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        out.print(table("spaces", ["space", "kind", "modalities", "dim", "joins", "val R@1"], [
            [s["name"], (s["kind"] if not s["method"] else f"connector ({s['method']})") + (f"; needs {', '.join(s['missing'])}" if s["missing"] else ""),
             ", ".join(s["modalities"]), str(s["dim"]),
             " + ".join(s["parents"]) or "-", "-" if s["score"] is None else f"{s['score']:.3f}"] for s in spaces]))
        out.print(table("overlaps (candidate connections)", ["a", "b", "via", "trained"],
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
              "with the techniques that keep each encoder's knowledge (bridging; for c-mcr also both-sides via and the memory readout; docs/architecture.md).")
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
        from ..fetch.official import connect_official, official_kind, official_url

        if dry_run:
            kind = official_kind(a, b, via, method)[0]
            out.print(f"would download {official_url(kind)} (checked against its git blob id) and import it as {kind}")
            return
        space = connect_official(a, b, via=via, method=method, name=name, overwrite=overwrite, progress=progress)
        out.print(f"stored connector {space.name} (the official {space.card.method} heads; {' + '.join(space.parent_names())}; "
                  f"{'/'.join(space.modalities)}; {space.dim}-d) in {space.folder}")
        return
    from ..fetch import corpora
    from ..connect import connect

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
    from ..fetch.corpora import fetch_plan, human, leaf_space
    from ..fetch.recipes import find
    from ..spaces.registry import get_mcr

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


@cli.command("adapt")
@click.argument("connector")
@click.argument("modality")
@click.option("--items", "items", required=True, type=click.Path(exists=True),
              help="Unlabelled items of MODALITY from your domain (a folder or a file of paths): a few dozen at least, the more the better.")
@click.option("--memory", type=click.Path(exists=True), help="The MODALITY memory CONNECTOR was trained on, when no plugin offers it "
              "(checked against the connector's card).")
@click.option("--neighbours", type=click.IntRange(min=1), default=10, show_default=True, help="Memory neighbours per item in the offset.")
@click.option("--name", help="Name of the adapted connector (default: CONNECTOR.adapted).")
@click.option("--overwrite", is_flag=True, help="Replace a stored connector of the same name.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
def adapt_cmd(connector, modality, items, memory, neighbours, name, overwrite, progress):
    """Adapt CONNECTOR to your own recordings of MODALITY (a microphone, voices, a camera the
    training memory never held): store a copy that moves those items by the offset between your
    corpus and the memory, measured without labels. Nothing is trained; CONNECTOR stays as it is.
    Measured: docs/results/domain-offset (real voices gain most; a corpus like the memory gets ~0).

    \b
    Example:
      mcrgraph adapt mini-clip+mini-clap audio --items my_recordings/
      mcrgraph search --audio@mini-clip+mini-clap.adapted q.wav --images photos/

    Both spaces stay stored, so an unpinned query that both answer asks which one: pin the
    adapted one as above (or remove the other)."""
    from ..adapt import adapt
    from ..spaces.mcr import split_pin

    space = adapt(connector, modality, read_items(items, split_pin(modality)[0]), memory=read_items(memory, split_pin(modality)[0]) if memory else None,
                  neighbours=neighbours, name=name, overwrite=overwrite, progress=progress)
    ref = space.card.offsets[-1]
    out.print(f"stored connector {space.name} in {space.folder}: {connector} with its {ref.modality} (encoded by {ref.space}) moved by an "
              f"offset of length {ref.norm:.3f}, measured on {ref.corpus.count} items against its {ref.memory.count}-item memory "
              f"({ref.neighbours} neighbours). Pin it to use it (e.g. --{ref.modality}@{space.name}); {connector} is unchanged.", markup=False)


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
    from ..fetch.official import import_official

    space = import_official(file, kind, name=name, clip=clip, leaf=leaf, overwrite=overwrite)
    out.print(f"stored connector {space.name} ({space.card.method}; {' + '.join(space.parent_names())}; "
              f"{'/'.join(space.modalities)}; {space.dim}-d) in {space.folder}")


@cli.command("download")
@click.argument("spaces", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="Only list the files: what, from where, to where, how big, already here or not.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@click.option("--check/--no-check", default=True, show_default=True, help="After fetching, load each space and encode one sample "
              "item of each of its modalities, so an unusable file shows now, not at the first connect.")
def download_cmd(spaces, dry_run, progress, check):
    """Fetch the weights (and tokenizers) that the named spaces' plugins declare, into the
    places the plugins read them from, so that this machine can work offline afterwards.
    SPACES: clip, clap, ulip (any installed space whose plugin declares files), or all.

    \b
    Example:
      mcrgraph download all --dry-run
      mcrgraph download clip clap && mcrgraph plugins"""
    from ..fetch.download import human_size
    from ..fetch.encoders import download_weights, plan_downloads

    if dry_run:  # lines, not a table: addresses and paths are never cut
        planned = plan_downloads(list(spaces), with_sizes=True)
        for p in planned:
            d = p.download
            out.print(f"{p.space}: {d.what}, {human_size(p.size)}, {f'here: {p.local}' if p.local else 'to download'}\n"
                      f"  from {d.address()}\n  to   {d.dest or 'the Hugging Face cache (' + (d.cache_dir or 'its default folder') + ')'}"
                      + f"\n  checked: {d.digest()}"
                      + (f"\n  licence: {d.licence}" if d.licence else ""), soft_wrap=True, markup=False)
        left = [p for p in planned if not p.local]
        unknown = sum(p.size is None for p in left)
        out.print(f"{len(left)} of {len(planned)} files to download" + (f", {human_size(sum(p.size or 0 for p in left))}" if left else "")
                  + (f" and {unknown} of unknown size (offline?)" if unknown else ""))
        return

    def done(p):
        out.print(f"{p.space}: {p.download.what} -> {p.local}", soft_wrap=True, markup=False)

    fetched = download_weights(list(spaces), progress=progress, on_file=done)
    if not check:
        out.print("done; `mcrgraph plugins` shows the weights present (`mcrgraph plugins --check` loads and tries them)")
        return
    from ..spaces.probe import check_space
    from ..spaces.registry import get_mcr

    checks = [(name, check_space(get_mcr(name))) for name in dict.fromkeys(p.space for p in fetched)]
    _print_checks(checks)
    if any(p.ok is False for _, probes in checks for p in probes):
        raise EncoderError("the files are here, but a space above does not work with them: see its line (the files are kept; "
                           "a file that is not what the space expects needs replacing, e.g. by deleting it and downloading again)")
    out.print("done: the weights are here and work")


@cli.group("eval")
def eval_group():
    """Evaluate spaces and connectors on a held-out benchmark: `mcrgraph eval mini` (the
    bundled world). Plugins add benchmarks here."""


@cli.command("plan")
@click.argument("a")
@click.argument("b")
@connect_flag
@click.option("--epochs", type=int, help="With --connect: training epochs of each connect (method default if omitted).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="With --connect: show progress bars.")
def plan_cmd(a, b, join_first, epochs, progress):
    """Show which space compares modalities A and B (e.g. audio, or audio@clap), through which
    chain of connectors. When none does yet, list the connect commands that would create one
    (or, with --connect, run them)."""
    from ..planning.graph import graph

    options = {"epochs": epochs} if epochs is not None else {}
    click.echo(planned(graph(), a, b, join_first, progress=progress, **options).describe())


@cli.group("connectors", cls=Group, invoke_without_command=True)
@click.pass_context
def connectors_cmd(ctx):
    """List stored connectors; `show NAME` prints a card, `remove NAME` deletes one."""
    if ctx.invoked_subcommand is not None:
        return
    from ..store.disk import connectors_dir

    good, bad = connectors.list_cards()
    rows = [[n, c.method + "".join(f", adapted ({o.modality})" for o in c.offsets), " + ".join(s.name for s in c.spaces), c.via, "/".join(c.modalities),
             "-" if c.score() is None else f"{c.score():.3f}", c.created.strftime("%Y-%m-%d %H:%M")] for n, (_, c) in good.items()]
    out.print(table(f"connectors in {connectors_dir()}", ["name", "method", "joins", "via", "modalities", "val R@1", "created"], rows))
    for folder, why in bad.items():
        err.print(f"unreadable connector {folder}: {why}")


def _existing(name: str):
    folder = connectors.find(name)
    if folder is None:
        raise UnknownMCRError(f"no stored connector named {name!r} (see: mcrgraph connectors)")
    return folder


@connectors_cmd.command("show")
@click.argument("name")
def connectors_show(name):
    """Print connector NAME's card (JSON)."""
    click.echo(connectors.read_card(_existing(name)).to_json(), nl=False)


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


for _command in (queries.similarity_cmd, queries.classify_cmd, queries.search_cmd, queries.localize_cmd, serve.serve_cmd,
                 serve.gallery_group):
    cli.add_command(_command)
_plugin_commands()


def main() -> None:
    cli(prog_name="mcrgraph")
