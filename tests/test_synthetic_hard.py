"""Issue 25: the hard synthetic evaluation world and `mcrgraph eval hard`."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import mcrgraph
from mcrgraph.errors import DataError, DuplicateMCRError
from mcrgraph.default_plugins import synthetic_hard as hw
from mcrgraph.default_plugins import synthetic_hard_eval as he
from mcrgraph.ranking.metrics import retrieval


@pytest.fixture
def hard():
    spaces = hw.enable()
    yield {s.name: s for s in spaces}
    for s in spaces:
        mcrgraph.unregister(s.name)


def test_items_and_splits_are_apart():
    assert hw.parse_item("c17#3") == (17, 3)
    with pytest.raises(DataError):
        hw.parse_item(f"c{hw.CONCEPTS}#0")
    held = {hw.parse_item(i)[1] for m in ("audio", "image", "text") for i in hw.held_out(m)[0]}
    trained = {hw.parse_item(i)[1] for i in hw.via_items("text", "all") + hw.via_items("image", "all")
               + hw.memory_items("image") + hw.memory_items("audio")}
    assert not held & trained  # held-out instances are never training data
    for coverage, every in hw.COVERAGE.items():
        named = {hw.parse_item(i)[0] for i in hw.via_items("text", coverage)} & set(range(hw.TEST))
        assert named == {k for k in range(hw.TEST) if hw.covered(k, coverage)}
        assert 0 < len(named) <= hw.TEST // every + 3  # all, half, few of the test concepts
    groups = hw.groups(hw.held_out("audio")[1], "half")
    assert groups["named in via"].any() and groups["not in via"].any()
    assert not (groups["named in via"] & groups["not in via"]).any()


def test_a_bigger_memory_keeps_the_base_world_and_adds_no_hidden_pairs():
    """`eval hard --memory N`: N instances of each concept in each modality's memory; the first three are the
    base world's, and no instance is shared with another modality's memory (a shared instance shares its offset:
    a pair nobody gave), the via items or the held-out items."""
    assert hw.memory_items("audio") == hw.memory_items("audio", hw.MEMORY_PER_CONCEPT)
    big = {m: hw.memory_items(m, 30) for m in ("image", "audio", "3d")}
    assert all(len(v) == 30 * hw.CONCEPTS == len(set(v)) for v in big.values())
    assert set(hw.memory_items("audio")) <= set(big["audio"]) and len(hw.memory_items("audio", 1)) == hw.CONCEPTS
    instances = {m: {hw.parse_item(i)[1] for i in v} for m, v in big.items()}
    others = {hw.parse_item(i)[1] for i in hw.via_items("text", "all") + hw.via_items("image", "all")
              + [i for m in ("audio", "image", "3d", "text") for i in hw.held_out(m)[0]]}
    assert not instances["image"] & instances["audio"] and not instances["audio"] & instances["3d"] and not instances["image"] & instances["3d"]
    assert not set().union(*instances.values()) & others
    with pytest.raises(DataError, match="at least 1"):
        hw.memory_items("audio", 0)


def test_encoding_is_deterministic_unit_and_shares_instances(hard):
    clip = hard["hard-clip"]
    items = ["c3#100", "c3#101", "c250#7"]
    a, b = mcrgraph.embed(clip, "image", items, use_cache=False), clip.encode("image", items)
    assert torch.equal(a, b) and torch.allclose(a.norm(dim=1), torch.ones(3), atol=1e-5)
    # one instance's offset is shared by its modalities: image and audio of c3#100 start from the same point
    (xa, _), (xi, _) = hw.latent("audio", "c3#100"), hw.latent("image", "c3#100")
    (xo, _) = hw.latent("image", "c3#101")
    assert np.linalg.norm(xa - xi) < np.linalg.norm(xa - xo)


def test_parents_range_from_strong_to_weak(hard):
    """hard-clap's own audio->text R@1 falls from the strong to the weak tier (what the tiers are for)."""
    audio, a_lab = hw.held_out("audio")
    text, t_lab = hw.held_out("text")
    clap = hard["hard-clap"]
    sim = clap.encode("audio", audio) @ clap.encode("text", text).T
    r1 = {t: retrieval(sim[torch.from_numpy(m)], a_lab[m], t_lab)["r1"] for t, m in hw.groups(a_lab, "all").items() if t != "all"}
    assert r1["strong parent"] > r1["medium parent"] + 0.1 > r1["weak parent"] + 0.2


def test_enable_never_shadows_another_space(hard):
    mcrgraph.unregister("hard-clap")

    class Other(mcrgraph.MCR):
        name, modalities, dim = "hard-clap", ("audio", "text"), 4

        def encode(self, modality, items):
            return torch.nn.functional.normalize(torch.ones(len(items), 4), dim=1)

    mcrgraph.register(Other())
    with pytest.raises(DuplicateMCRError, match="will not shadow"):
        hw.enable()
    mcrgraph.unregister("hard-clap")
    hw.enable()


def test_eval_hard_runs_rows_per_world_and_group(hard, monkeypatch, tmp_path):
    monkeypatch.setattr(he, "ROWS", {"C-MCR, quick": dict(method="c-mcr", preset="paper", epochs=1),
                                     "C-MCR, quick + bridging": dict(method="c-mcr", preset="paper", epochs=1, bridge_weight=0.7)})
    out = CliRunner().invoke(he.eval_hard, ["--seeds", "0,1", "--coverage", "few", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    import json

    res = json.loads((tmp_path / "results.json").read_text())["results"]["few"]
    cell = res["rows"]["C-MCR, quick"]["audio->image R@1"]["not in via"]
    assert len(cell["per seed"]) == 2 and cell["spread"] == max(cell["per seed"]) - min(cell["per seed"])
    assert set(res["rows"]["C-MCR, quick + bridging"]) == {*he.METRICS, he.HOP}  # C-MCR rows also go two hops to 3d
    hop = res["rows"]["C-MCR, quick"][he.HOP]
    assert set(hop) == set(cell_groups := res["parents"]["chance audio->image R@1"]) and all(0 <= v["mean"] <= 1 for v in hop.values())
    text = (tmp_path / "results.md").read_text()
    assert "### audio->image R@1, coverage few" in text and f"### {he.HOP}, coverage few" in text
    chance_row = text.split(f"### {he.HOP}")[1].split("| chance | ")[1].split("\n")[0]
    assert [float(v) for v in chance_row.strip(" |").split(" | ")] == pytest.approx(list(he.chance_3d("few", list(cell_groups)).values()), abs=5e-4)
    bigger = CliRunner().invoke(he.eval_hard, ["--seeds", "0", "--coverage", "few", "--memory", "4", "--rows", "C-MCR, quick"])
    assert bigger.exit_code == 0 and "memory 4 per concept (1600 items a modality)" in " ".join(bigger.output.split()), bigger.output
    bad = CliRunner().invoke(he.eval_hard, ["--coverage", "most"])
    assert bad.exit_code == 2 and "coverages are some of" in bad.output
