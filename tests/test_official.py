"""Importing the official C-MCR / Ex-MCR checkpoints: files the test builds in the official key
layout, from an independent statement of the official heads (written out below as the papers'
code defines them), must give the same embeddings through our stored connector."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

import mcrgraph
from mcrgraph.cli import cli
from mcrgraph.fetch.official import import_official
from conftest import FakeMCR


# -- the official heads (MCR-PEFT/C-MCR cmcr_projector.py, MCR-PEFT/Ex-MCR exmcr_projector.py) --
class MLP(nn.Module):
    def __init__(self, channel=512, res_expansion=1.0):
        super().__init__()
        h = int(channel * res_expansion)
        self.net1 = nn.Sequential(nn.Linear(channel, h), nn.BatchNorm1d(h), nn.ReLU())
        self.net2 = nn.Sequential(nn.Linear(h, channel), nn.BatchNorm1d(channel))

    def forward(self, x):
        return self.net2(self.net1(x))


class MLP_Half(nn.Module):
    def __init__(self, channel=512):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(channel, channel), nn.BatchNorm1d(channel), nn.ReLU())

    def forward(self, x):
        return self.net(x)


class CLAPCLIP_Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.Head_A, self.Head_B = MLP(res_expansion=2.0), MLP(res_expansion=2.0)


class ULIPCLIP_Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.Head_A, self.Head_B = MLP_Half(), MLP_Half()


class Projector(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp1, self.mlp2 = MLP(res_expansion=2), MLP(res_expansion=2)

    def forward(self, x):
        return F.normalize(self.mlp2(self.mlp1(x)), dim=-1)


class Ex_MCR_Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.Head1, self.Head2 = nn.Linear(512, 512), Projector()


def official(cls, seed=0):
    """An official head with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    head = cls()
    for m in head.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
            m.num_batches_tracked.fill_(1000)
    return head.eval()


@pytest.fixture
def spaces512():
    made = [FakeMCR("fclip", ("image", "text"), dim=512), FakeMCR("fclap", ("audio", "text"), dim=512),
            FakeMCR("fulip", ("3d", "image"), dim=512)]
    for s in made:
        mcrgraph.register(s)
    yield {s.name: s for s in made}
    for s in made:
        mcrgraph.unregister(s.name)


def emb(space, modality, items):
    return mcrgraph.embed(space, modality, items)


ITEMS = [f"c{i}" for i in range(7)]


def test_clap_clip_matches_the_official_forward(tmp_path, spaces512):
    head = official(CLAPCLIP_Head)
    path = tmp_path / "clap_clip.pt"
    torch.save(head.state_dict(), path)
    space = import_official(path, "clap-clip", clip="fclip", leaf="fclap")
    assert space.name == "fclip+fclap" and space.card.method == "c-mcr" and "official clap_clip.pt" in space.card.origin
    assert space.card.config["preset"] == "paper"  # the published method: no bridging, no both-sides via
    again = mcrgraph.get_mcr("fclip+fclap")  # read back from the store, not the returned object
    with torch.no_grad():
        for modality, side, official_head in (("audio", "fclap", head.Head_A), ("image", "fclip", head.Head_B), ("text", "fclip", head.Head_B)):
            want = F.normalize(official_head(emb(spaces512[side], modality, ITEMS)), dim=-1)
            got = again.encode(modality, ITEMS)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        # CLAP's own text is pinned through Head_A
        want = F.normalize(head.Head_A(emb(spaces512["fclap"], "text", ITEMS)), dim=-1)
        torch.testing.assert_close(again.encode("text@fclap", ITEMS), want, atol=1e-5, rtol=1e-5)


def test_ulip_clip_matches_the_official_forward(tmp_path, spaces512):
    head = official(ULIPCLIP_Head, seed=1)
    path = tmp_path / "ulip_clip.pt"
    torch.save(head.state_dict(), path)
    space = import_official(path, "ulip-clip", clip="fclip", leaf="fulip")
    with torch.no_grad():
        want_3d = F.normalize(head.Head_B(emb(spaces512["fulip"], "3d", ITEMS)), dim=-1)
        want_img = F.normalize(head.Head_A(emb(spaces512["fclip"], "image", ITEMS)), dim=-1)
    torch.testing.assert_close(space.encode("3d", ITEMS), want_3d, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(space.encode("image", ITEMS), want_img, atol=1e-5, rtol=1e-5)
    assert (space.encode("3d", ITEMS) >= 0).all()  # the official ULIP-CLIP heads end in ReLU


@pytest.mark.parametrize("kind,leaf,modality", [("ex-clap", "fclap", "audio"), ("ex-ulip", "fulip", "3d")])
def test_ex_mcr_matches_the_official_forward(tmp_path, spaces512, kind, leaf, modality):
    head = official(Ex_MCR_Head, seed=2)
    with torch.no_grad():
        head.Head1.weight.add_(0.1 * torch.randn(512, 512))  # not the identity it starts from
    path = tmp_path / f"{kind}.pt"
    torch.save(head.state_dict(), path)
    space = import_official(path, kind, clip="fclip", leaf=leaf)
    assert space.name == f"{leaf}-into-fclip"
    with torch.no_grad():
        x = emb(spaces512[leaf], modality, ITEMS)
        want = F.normalize(head.Head2(head.Head1(x)), dim=-1)
    torch.testing.assert_close(space.encode(modality, ITEMS), want, atol=1e-5, rtol=1e-5)
    # the base space is kept exactly: CLIP's image and text embeddings are untouched
    assert torch.equal(space.encode("image", ITEMS), emb(spaces512["fclip"], "image", ITEMS))
    assert torch.equal(space.encode("text", ITEMS), emb(spaces512["fclip"], "text", ITEMS))


def test_a_ddp_prefix_is_accepted(tmp_path, spaces512):
    head = official(ULIPCLIP_Head)
    path = tmp_path / "u.pt"
    torch.save({f"module.{k}": v for k, v in head.state_dict().items()}, path)
    assert import_official(path, "ulip-clip", clip="fclip", leaf="fulip").card.method == "c-mcr"


def test_the_wrong_kind_is_named(tmp_path, spaces512):
    path = tmp_path / "clap_clip.pt"
    torch.save(official(CLAPCLIP_Head).state_dict(), path)
    with pytest.raises(mcrgraph.ConnectorFileError, match="looks like --kind clap-clip"):
        import_official(path, "ulip-clip", clip="fclip", leaf="fulip")
    from mcrgraph.store.disk import connectors_dir

    assert not (connectors_dir() / "fclip+fulip").exists()


def test_foreign_corrupt_and_unsafe_files_are_refused(tmp_path, spaces512):
    from mcrgraph.store.disk import connectors_dir

    state = official(CLAPCLIP_Head).state_dict()
    bad_shape = dict(state, **{"Head_A.net1.0.weight": torch.zeros(1024, 256)})
    torch.save(bad_shape, tmp_path / "shape.pt")
    with pytest.raises(mcrgraph.ConnectorFileError, match="does not fit"):
        import_official(tmp_path / "shape.pt", "clap-clip", clip="fclip", leaf="fclap")
    nan = dict(state, **{"Head_B.net2.0.bias": torch.full((512,), float("nan"))})
    torch.save(nan, tmp_path / "nan.pt")
    with pytest.raises(mcrgraph.ConnectorFileError, match="NaN"):
        import_official(tmp_path / "nan.pt", "clap-clip", clip="fclip", leaf="fclap")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(mcrgraph.ConnectorFileError, match="not a readable torch checkpoint"):
        import_official(tmp_path / "junk.pt", "clap-clip", clip="fclip", leaf="fclap")
    torch.save({"Head_A.net1.0.weight": Evil()}, tmp_path / "evil.pt")  # would run code if unpickled
    with pytest.raises(mcrgraph.ConnectorFileError, match="refused"):
        import_official(tmp_path / "evil.pt", "clap-clip", clip="fclip", leaf="fclap")
    assert not EVIL_RAN
    assert not connectors_dir().exists() or not any(connectors_dir().iterdir())  # nothing half-stored


EVIL_RAN: list[int] = []


def _boom():
    EVIL_RAN.append(1)
    return {}


class Evil:
    def __reduce__(self):
        return (_boom, ())


def test_dimension_and_modality_checks(tmp_path, spaces512, fakes):
    path = tmp_path / "clap_clip.pt"
    torch.save(official(CLAPCLIP_Head).state_dict(), path)
    with pytest.raises(mcrgraph.ConfigError, match="512-d"):
        import_official(path, "clap-clip", clip="fa", leaf="fclap")  # fa is 8-d
    with pytest.raises(mcrgraph.ConfigError, match="no text"):
        import_official(path, "clap-clip", clip="fclip", leaf="fulip")


def test_cli_imports_onto_the_real_plugin_spaces(tmp_path):
    """With the clip and clap plugins installed, the default names need no options; their
    fingerprints name the published weights, so no weights are needed to import."""
    path = tmp_path / "clap_clip.pt"
    torch.save(official(CLAPCLIP_Head).state_dict(), path)
    runner = CliRunner()
    r = runner.invoke(cli, ["import-official", str(path), "--kind", "clap-clip"])
    assert r.exit_code == 0, r.output
    assert "stored connector clip+clap" in r.output
    r = runner.invoke(cli, ["connectors", "show", "clip+clap"])
    assert '"origin": "imported from the official clap_clip.pt' in r.output
    r = runner.invoke(cli, ["import-official", str(path), "--kind", "clap-clip"])
    assert r.exit_code != 0 and "exists" in r.output
    r = runner.invoke(cli, ["import-official", str(tmp_path / "missing.pt"), "--kind", "ex-clap"])
    assert r.exit_code != 0 and "does not exist" in r.output
    r = runner.invoke(cli, ["plan", "audio", "image"])
    assert r.exit_code == 0 and "clip+clap" in r.output, r.output
