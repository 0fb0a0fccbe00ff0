"""Joining on demand (issue 17, item 4): ``plan(a, b, connect=True)`` / ``--connect`` runs the
planner's cheapest chain of connects on default items, one step after another."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import mcrgraph
from mcrgraph.cli import cli
from mcrgraph.store.connectors import connectors_dir
from mcrgraph.errors import DataError
from mcrgraph.planning.graph import join

from conftest import CAPTIONS, QUICK, FakeMCR


def stored() -> list[str]:
    d = connectors_dir()
    return sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) if d.exists() else []


class Defaults:
    """A plugin offering default items to the fake spaces (captions for text, concept ids for images)."""

    @mcrgraph.hookimpl
    def default_items(self, mcr, modality, role):
        if role != "via" or not set(mcr.name.split("+")) <= {"fa", "fb", "fc"}:
            return None
        return {"text": CAPTIONS, "image": [f"k{i}#img" for i in range(40)]}.get(modality)


@pytest.fixture
def defaults(only_fakes):
    plugin = Defaults()
    mcrgraph.register(plugin, name="test-defaults")
    yield only_fakes
    mcrgraph.unregister("test-defaults")


def test_join_runs_the_chain_step_by_step(defaults):
    seen = []
    path = mcrgraph.graph().plan("audio", "3d", connect=True, on_step=lambda i, n, s: seen.append((i, n, s.a, s.b, s.via)), **QUICK)
    assert seen == [(0, 2, "fa", "fb", "text"), (1, 2, "fa+fb", "fc", "image")]
    assert stored() == ["fa+fb", "fa+fb+fc"]
    assert path.node == "fa+fb+fc"
    assert path.describe() == "audio@fb -> fa+fb -> fa+fb+fc <- 3d@fc"


def test_join_does_nothing_when_a_space_covers_both(defaults):
    g = mcrgraph.graph()
    assert g.plan("text", "image", connect=True, **QUICK).node == "fa"  # one space has both
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, **QUICK)
    steps = []
    path = join(mcrgraph.graph().nx, "audio", "image", on_step=lambda *a: steps.append(a), **QUICK)
    assert path.node == "fa+fb" and steps == [] and stored() == ["fa+fb"]


def test_join_refuses_before_training_when_a_step_has_no_default_items(only_fakes):
    with pytest.raises(DataError, match=r"step 1 of 2 \(fa with fb via text\) has no default items of text") as e:
        mcrgraph.graph().plan("audio", "3d", connect=True, **QUICK)
    assert "mcrgraph connect fa+fb fc --via image --items IMAGE_ITEMS" in str(e.value)
    assert stored() == []


def test_join_with_no_chain_is_the_planners_error(only_fakes):
    mcrgraph.register(FakeMCR("fd", ("smell",)))
    try:
        with pytest.raises(mcrgraph.NoPathError, match="no chain of shared modalities"):
            mcrgraph.graph().plan("audio", "smell", connect=True)
    finally:
        mcrgraph.unregister("fd")


def test_tasks_take_connect(defaults):
    r = CliRunner().invoke(cli, ["similarity", "--connect", "--audio", "k1", "--image", "k1", "--image", "k2"])
    assert r.exit_code == 0, r.output
    assert "step 1/1: mcrgraph connect fb fa --via text" in r.output
    assert "path: audio@fb -> fb+fa <- image@fa" in r.output
    r = CliRunner().invoke(cli, ["search", "--connect", "--no-progress", "--3d", "k1", "--texts", "k1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["classify", "--connect", "--no-progress", "--audio", "k1", "--label", "k1", "--label", "k2"])
    assert r.exit_code == 0, r.output
    assert stored() == ["fb+fa", "fc+fa"]


def test_plan_connect_on_the_bundled_world(monkeypatch):
    """`mcrgraph plan audio 3d --connect` offline on the mini world: mini-clip+mini-clap is built
    on the bundle's captions, then mini-ulip is joined through its images."""
    pytest.importorskip("mcrgraph_mini")
    for name in ("synthetic", "clip", "clap", "ulip"):  # the mini world alone, as on a fresh machine without real weights
        mcrgraph.unregister(name)
    r = CliRunner().invoke(cli, ["plan", "audio", "3d", "--connect", "--epochs", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "step 1/2: mcrgraph connect mini-clip mini-clap --via text" in r.output
    assert "step 2/2: mcrgraph connect mini-clip+mini-clap mini-ulip --via image" in r.output
    assert r.output.strip().splitlines()[-1] == "audio@mini-clap -> mini-clip+mini-clap -> mini-clip+mini-clap+mini-ulip <- 3d@mini-ulip"
    assert stored() == ["mini-clip+mini-clap", "mini-clip+mini-clap+mini-ulip"]
    card = mcrgraph.get_mcr("mini-clip+mini-clap+mini-ulip").card
    assert card.via == "image" and card.data[0].count > 100  # trained on the bundle's own images
    # asked again, nothing more is trained
    r = CliRunner().invoke(cli, ["plan", "audio", "3d", "--connect"])
    assert r.exit_code == 0 and "step" not in r.output
