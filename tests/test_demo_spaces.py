"""Demo spaces never shadow a user's spaces (issue 20): the synthetic toys stay out of a user's
graph unless asked for, plans follow a stated order (weights present, then not only demo
spaces, then cost, then fewest nodes) and a real tie is an error naming the pins."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
import torch

import mcrgraph
from mcrgraph.spaces import plugins
from conftest import FakeMCR


def test_synthetic_spaces_are_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv("MCRGRAPH_SYNTHETIC")
    plugins.reset()
    names = {m.name for m in mcrgraph.list_mcrs()}
    assert not names & {"synth-clip", "synth-clap", "synth-ulip"} and "mini-clip" in names
    monkeypatch.setenv("MCRGRAPH_SYNTHETIC", "1")
    plugins.reset()
    assert {"synth-clip", "synth-clap", "synth-ulip"} <= {m.name for m in mcrgraph.list_mcrs()}


def test_synthetic_eval_turns_them_on_for_itself(monkeypatch):
    from click.testing import CliRunner

    from mcrgraph.cli import cli

    monkeypatch.delenv("MCRGRAPH_SYNTHETIC")
    plugins.reset()
    r = CliRunner().invoke(cli, ["synthetic-eval", "--path", "image", "text", "--concepts", "20"])
    assert r.exit_code == 0, r.output
    assert "image@synth-clip <-> text@synth-clip" in r.output


def test_a_users_space_wins_over_a_demo_space_holding_the_same_modalities():
    mine = FakeMCR("my-space", ("image", "text"))
    mcrgraph.register(mine)
    try:
        path = mcrgraph.graph().plan("image", "text")
        assert path.node == "my-space"  # mini-clip and synth-clip hold image and text at the same cost, but are demo
        scores = mcrgraph.graph().similarity("image", ["c1", "c2"], "text", ["c1"])
        assert scores.shape == (2, 1) and scores.path.node == "my-space"  # and the result says which space answered
        buf = io.BytesIO()
        torch.save(scores, buf)
        buf.seek(0)
        assert torch.equal(torch.load(buf, weights_only=True), scores)  # and saves as a plain tensor
    finally:
        mcrgraph.unregister("my-space")


def test_a_real_tie_names_the_candidates_and_the_pins():
    for name in ("one", "two"):
        mcrgraph.register(FakeMCR(name, ("image", "text")))
    try:
        with pytest.raises(mcrgraph.AmbiguousPathError) as e:
            mcrgraph.graph().plan("image", "text")
        assert "one, two" in str(e.value) and "image@one or image@two" in str(e.value)
        assert e.value.pins == [("image@one", "text@one"), ("image@two", "text@two")]
        assert mcrgraph.graph().plan("image@two", "text").node == "two"  # the pin chooses
        with pytest.raises(mcrgraph.AmbiguousPathError):  # the same through the tasks and similarity
            mcrgraph.graph().similarity("image", ["c1"], "text", ["c1"])
    finally:
        for name in ("one", "two"):
            mcrgraph.unregister(name)


def test_present_weights_win_over_missing_ones():
    class Absent(FakeMCR):
        def weights_present(self):
            return False

    mcrgraph.register(Absent("absent", ("image", "text")))
    mcrgraph.register(FakeMCR("present", ("image", "text")))
    try:
        assert mcrgraph.graph().plan("image", "text").node == "present"
    finally:
        mcrgraph.unregister("absent")
        mcrgraph.unregister("present")


def test_a_connector_with_a_users_space_is_the_users():
    mcrgraph.register(FakeMCR("my-audio", ("audio", "text"), dim=6))
    try:
        mcrgraph.connect("synth-clip", "my-audio", via="text", items=[f"c{i}#{j}" for j in range(3) for i in range(20)],
                         epochs=1, batch_size=16)
        mcrgraph.connect("synth-clip", "synth-clap", via="text", epochs=1)
        g = mcrgraph.graph()
        assert not g.nx.nodes["synth-clip+my-audio"]["demo"] and g.nx.nodes["synth-clip+synth-clap"]["demo"]
        assert g.plan("audio", "image").node == "synth-clip+my-audio"  # whatever the validation scores say
    finally:
        mcrgraph.unregister("my-audio")


ADVICE = "import mcrgraph\ntry:\n    mcrgraph.graph().plan('audio', '3d')\nexcept mcrgraph.NoPathError as e:\n    print(e.steps)\n"


def test_advice_is_the_same_in_every_process(tmp_path):
    """Six processes with different hash seeds give one chain, and it joins spaces whose weights
    are present (not ulip's missing ones, not a toy when the trained mini spaces are there)."""
    seen = set()
    for seed in range(6):
        env = dict(os.environ, PYTHONHASHSEED=str(seed), MCRGRAPH_HOME=str(tmp_path / "home"))
        env.pop("MCRGRAPH_SYNTHETIC")
        r = subprocess.run([sys.executable, "-c", ADVICE], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        seen.add(r.stdout.strip())
    assert len(seen) == 1
    steps = eval(seen.pop())  # noqa: S307 - our own printed list
    assert steps and all("mini-" in s and "synth-" not in s and " ulip" not in s for s in steps), steps
