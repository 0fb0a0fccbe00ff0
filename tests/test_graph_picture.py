"""The graph picture (issue 20): spaces and modalities as two kinds of node, legible at 20+
spaces, as a PNG and as Mermaid text."""
from __future__ import annotations

import re

import mcrgraph
from click.testing import CliRunner
from conftest import CAPTIONS, QUICK, FakeMCR
from mcrgraph.cli import cli
from mcrgraph.planning.picture import MIN_GAP, layout, mermaid

MODS = [("image", "text"), ("audio", "text"), ("3d", "image"), ("audio", "image"), ("text",), ("3d", "text")]


def many(n: int = 18) -> list[str]:
    names = [f"s{i:02d}" for i in range(n)]
    for i, name in enumerate(names):
        mcrgraph.register(FakeMCR(name, MODS[i % len(MODS)]))
    return names


def test_layout_at_two_dozen_spaces_keeps_rows_apart_and_links_by_kind():
    names = many()
    try:
        mcrgraph.connect("s00", "s01", via="text", items=CAPTIONS, config=QUICK)
        mcrgraph.connect("s00+s01", "s02", via="image", items=CAPTIONS, config=QUICK)
        g = mcrgraph.graph().nx
        assert len(g) >= 24
        pic = layout(g)
        assert {name for kind, name in pic.pos if kind == "space"} == set(g.nodes)
        rows: dict[float, list[float]] = {}
        for (x, y) in pic.pos.values():
            rows.setdefault(y, []).append(x)
        for xs in rows.values():  # no two nodes of a row closer than the gap: labels cannot overlap
            xs.sort()
            assert all(b - a >= MIN_GAP - 1e-9 for a, b in zip(xs, xs[1:]))
        assert set(pic.holds) == {(n, m) for n in names for m in g.nodes[n]["modalities"]} | {
            (n, m) for n, a in g.nodes(data=True) if a["kind"] == "plugin" and n not in names for m in a["modalities"]}
        assert ("s00+s01+s02", "s00+s01") in pic.joins and ("s00+s01", "s00") in pic.joins
        y = {name: pic.pos[("space", name)][1] for name in g}
        assert y["s00+s01+s02"] > y["s00+s01"] > y["s00"] > pic.pos[("modality", "text")][1]
        # one line per space and modality it holds, not one per pair of spaces sharing a modality
        pairs = sum(1 for u, v, a in g.edges(data=True) if a["kind"] == "overlap")
        assert len(pic.holds) + len(pic.joins) < pairs
    finally:
        for name in names:
            mcrgraph.unregister(name)


def test_mermaid_text_defines_every_node_it_links():
    mcrgraph.register(FakeMCR("my.space+x", ("audio", "text")))
    try:
        mcrgraph.connect("synth-clip", "my.space+x", via="text", items=[c.replace("k", "c") for c in CAPTIONS], config=QUICK, name="joined")
        text = mermaid(mcrgraph.graph().nx)
    finally:
        mcrgraph.unregister("my.space+x")
    lines = text.splitlines()
    assert lines[0] == "flowchart BT"
    defined = {m.group(1) for m in (re.match(r"\s+(\w+)[\[\(\{]", line) for line in lines) if m}
    linked = {w for line in lines if "---" in line or "-->" in line for w in re.findall(r"\b([sm]\d+_\w+)\b", line)}
    assert linked and linked <= defined
    assert any('"joined<br/>c-mcr"' in line for line in lines) and any('|"via text"|' in line for line in lines)


def test_cli_writes_png_and_mermaid(tmp_path):
    png, mmd = tmp_path / "g.png", tmp_path / "g.mmd"
    r = CliRunner().invoke(cli, ["graph", "--png", str(png), "--mermaid", str(mmd)])
    assert r.exit_code == 0, r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and mmd.read_text().startswith("flowchart BT")
    r = CliRunner().invoke(cli, ["graph", "--mermaid", "-"])
    assert r.exit_code == 0 and r.output == mmd.read_text()


def test_connectors_whose_parents_are_gone_share_a_row_without_overlapping():
    mcrgraph.register(FakeMCR("gone", ("audio", "text"), dim=6))
    mcrgraph.connect("synth-clip", "gone", via="text", items=[c.replace("k", "c") for c in CAPTIONS], config=QUICK, name="first")
    mcrgraph.connect("synth-clip", "gone", via="text", items=[c.replace("k", "c") for c in CAPTIONS], config=QUICK, name="second")
    mcrgraph.unregister("gone")
    pic = layout(mcrgraph.graph().nx)
    (x1, y1), (x2, y2) = pic.pos[("space", "first")], pic.pos[("space", "second")]
    assert y1 == y2 and abs(x1 - x2) >= MIN_GAP
