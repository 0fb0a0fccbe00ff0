"""`mcrgraph download`: the files plugins declare through the ``weights_downloads`` hook, fetched
into the places the plugins read (a local server stands in for the hosts), after which the
spaces report their weights present. The real plugins' declarations are checked against the
places their spaces look, with a Hugging Face cache laid out by the test."""
from __future__ import annotations

import hashlib
import json
import os

import pytest
from click.testing import CliRunner

import mcrgraph
from conftest import FakeMCR
from local_server import block_internet, serve
from mcrgraph.cli import cli
from mcrgraph.errors import EncoderError
from mcrgraph.fetch.download import Download
from mcrgraph.fetch.encoders import plan_downloads

DATA = os.urandom(200_000)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    refused = block_internet(monkeypatch)
    yield refused
    assert refused == [], f"the test tried to reach {refused}"


def run(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def server():
    with serve({"/enc.bin": DATA}) as s:
        yield s


class EncPlugin:
    """A run-time plugin with one space and one declared weights file."""

    __name__ = "enc-plugin"

    def __init__(self, url, dest):
        self.url, self.dest = url, dest

    @mcrgraph.hookimpl
    def register_mcrs(self, register):
        register(FakeMCR("enc", ("image", "text")))

    @mcrgraph.hookimpl
    def weights_downloads(self, mcr):
        if mcr.name != "enc":
            return None
        return [Download("enc weights", url=self.url, dest=self.dest, sha256=hashlib.sha256(DATA).hexdigest(),
                         licence="CC0-1.0")]


@pytest.fixture
def enc(server, tmp_path, monkeypatch):
    plugin = EncPlugin(server.url + "/enc.bin", tmp_path / "weights" / "enc.bin")
    mcrgraph.register(plugin)
    yield plugin
    mcrgraph.unregister("enc-plugin")


def test_dry_run_lists_without_fetching(enc, server):
    r = run("download", "enc", "--dry-run")
    assert r.exit_code == 0, r.output
    assert (f"enc: enc weights, 200.0 KB, to download\n  from {enc.url}\n  to   {enc.dest}\n"
            f"  checked: sha256 {hashlib.sha256(DATA).hexdigest()}\n  licence: CC0-1.0") in r.output
    assert "1 of 1 files to download, 200.0 KB" in r.output
    assert server.gets() == [] and not enc.dest.exists()  # a HEAD for the size, no transfer


def test_download_fetches_once_then_finds_it_here(enc, server):
    r = run("download", "enc", "--no-progress")
    assert r.exit_code == 0, r.output
    assert enc.dest.read_bytes() == DATA and f"enc: enc weights -> {enc.dest}" in r.output
    r = run("download", "enc", "--no-progress")
    assert r.exit_code == 0 and len(server.gets()) == 1  # verified in place, not fetched again
    r = run("download", "all", "--dry-run")
    assert f"enc: enc weights, 200.0 KB, here: {enc.dest}" in r.output


def test_download_ends_by_trying_what_it_fetched(enc):
    r = run("download", "enc", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "enc: works: loaded, and encoded one item of each modality (image, text) as a unit row in" in r.output
    assert "done: the weights are here and work" in r.output


class PickyMCR(FakeMCR):
    """Reads its weights file on the first encode and refuses one that is not its format."""

    def __init__(self, dest):
        super().__init__("picky", ("audio", "text"))
        self.dest = dest

    def weights_present(self):
        return self.dest.is_file()

    def encode(self, modality, items):
        if not self.dest.read_bytes().startswith(b"PICKY"):
            raise EncoderError(f"picky: {self.dest} is not a picky weights file")
        return super().encode(modality, items)


class PickyPlugin:
    __name__ = "picky-plugin"

    def __init__(self, url, dest):
        self.space = PickyMCR(dest)
        self.url = url

    @mcrgraph.hookimpl
    def register_mcrs(self, register):
        register(self.space)

    @mcrgraph.hookimpl
    def weights_downloads(self, mcr):
        return [Download("picky weights", url=self.url, dest=self.space.dest, sha256=hashlib.sha256(DATA).hexdigest())] if mcr.name == "picky" else None


@pytest.fixture
def picky(server, tmp_path):
    plugin = PickyPlugin(server.url + "/enc.bin", tmp_path / "weights" / "picky.bin")
    mcrgraph.register(plugin)
    yield plugin
    mcrgraph.unregister("picky-plugin")


def test_an_unusable_download_is_found_at_download_time(picky):
    """The bytes arrive whole (the host served them), but they are not what the space reads:
    `download` says so now, keeps the file, and exits non-zero; `plugins --check` says the same."""
    r = run("download", "picky", "--no-progress")
    assert r.exit_code == 1, r.output
    assert f"picky: FAILED: audio: picky: {picky.space.dest} is not a picky weights file; text: picky:" in r.output
    assert "the files are here, but a space above does not work with them" in r.output
    assert picky.space.dest.read_bytes() == DATA
    r = run("download", "picky", "--no-progress", "--no-check")
    assert r.exit_code == 0 and "plugins --check" in r.output
    r = run("plugins", "--check")
    assert r.exit_code == 1 and "picky: FAILED: audio:" in r.output
    picky.space.dest.write_bytes(b"PICKY" + DATA)
    r = run("plugins", "--check", "--json")
    assert r.exit_code == 0, r.output
    spaces = {s["name"]: s for p in json.loads(r.output) for s in p["spaces"]}
    assert [(c["modality"], c["ok"]) for c in spaces["picky"]["check"]] == [("audio", True), ("text", True)]
    assert "check" not in spaces["clip"]  # weights missing: not tried (it would start a download)


def test_a_space_without_declared_files_is_named(enc):
    r = run("download", "mini-clip")
    assert r.exit_code != 0 and "'mini-clip': no files to download" in r.output and "enc" in r.output
    r = run("download", "nope")
    assert r.exit_code != 0 and "no space named 'nope'" in r.output


def ulip_present():
    data = json.loads(run("plugins", "--json").output)
    return next(s for p in data for s in p["spaces"] if s.get("name") == "ulip")["weights_present"]


def test_ulip_download_from_its_hub_repository_makes_the_weights_present(hf_cache, tmp_path, monkeypatch):
    """ULIP's files moved to the Hugging Face dataset SFXX/ulip (salesforce/ULIP README,
    05/23/2025): `download ulip` fetches from there, into the hub cache the space looks in."""
    from huggingface_hub import constants
    from mcrgraph_ulip import space as ulip

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the default place: empty
    path = f"/datasets/{ulip.HUB_REPO}/resolve/main/{ulip.HUB_FILE}"
    with serve({path: DATA}) as hub:
        hub.etags[path] = f'"{hashlib.sha256(DATA).hexdigest()}"'
        hub.headers["X-Repo-Commit"] = "c" * 40
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        assert ulip_present() is False
        r = run("download", "ulip", "--dry-run")
        assert f"from {hub.url}{path}" in r.output and "checked: NOT PINNED" in r.output, r.output
        r = run("download", "ulip", "--no-progress", "--no-check")
        assert r.exit_code == 0, r.output
        assert ulip_present() is True and len(hub.gets(path)) == 1
        assert mcrgraph.get_mcr("ulip").config.checkpoint_path().read_bytes() == DATA


@pytest.mark.parametrize("name", ["pointbert_ULIP-2.pt", "pretrained_models_ckpt_zero-sho_classification_pointbert_ULIP-2.pt",
                                  "ULIP-2-PointBERT-8k-xyz-pc-slip_vit_b-objaverse-pretrained.pt"])
def test_ulip_finds_a_copy_by_any_of_its_names(tmp_path, monkeypatch, name):
    """A copy downloaded by hand keeps the name it came with: ours, the one a browser gave for the
    old Google Cloud object, or the hub's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ulip_present() is False
    (tmp_path / "mcrgraph" / "ulip").mkdir(parents=True)
    (tmp_path / "mcrgraph" / "ulip" / name).write_bytes(b"x")
    assert ulip_present() is True
    assert "no files to download" in run("download", "ulip", "--dry-run").output  # nothing to fetch


def hub_file(cache, repo, filename, data=b"x", commit=None):
    """A file in the Hugging Face cache layout (what hf_hub_download leaves behind)."""
    commit = commit or "0" * 40
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snap = repo_dir / "snapshots" / commit / filename
    snap.parent.mkdir(parents=True, exist_ok=True)
    snap.write_bytes(data)
    return snap


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_clip_and_clap_declare_what_their_spaces_look_for(hf_cache):
    """Each declared hub file, once in the cache, is what the space finds: the weights read as
    present and `download` has nothing to fetch (offline here: any transfer would fail)."""
    clip, clap = mcrgraph.get_mcr("clip"), mcrgraph.get_mcr("clap")
    assert clip.weights_present() is False and clap.weights_present() is False
    planned = plan_downloads(["clip", "clap"])
    files = [(p.space, p.download.repo_id, p.download.filename) for p in planned]
    assert files == [("clip", "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors"),
                     ("clap", "lukewys/laion_clap", "630k-fusion-best.pt"),
                     ("clap", "FacebookAI/roberta-base", "vocab.json"), ("clap", "FacebookAI/roberta-base", "merges.txt"),
                     ("clap", "FacebookAI/roberta-base", "config.json")]
    assert all(p.local is None for p in planned)
    r = run("download", "clap", "--no-progress")  # offline (HF_HUB_OFFLINE=1 in tests): a clear line, nothing half-done
    from mcrgraph_clap.space import CHECKPOINT_REVISION

    assert r.exit_code != 0 and f"https://huggingface.co/lukewys/laion_clap/resolve/{CHECKPOINT_REVISION}/630k-fusion-best.pt" in r.output
    assert "MCRGRAPH_CLAP_CHECKPOINT=/path/to/630k-fusion-best.pt" in r.output
    for p in planned:  # at the pinned commit, with the pinned bytes' size (the digest is only checked after a transfer)
        hub_file(hf_cache, p.download.repo_id, p.download.filename, commit=p.download.revision,
                 data=b"x" * (p.download.size or 1))
    assert clip.weights_present() is True
    assert clap.config.checkpoint_file() is not None
    from mcrgraph_clap.space import _tokenizer_source  # the folder it would read the tokenizer from

    assert _tokenizer_source(clap.config) is not None
    r = run("download", "clip", "clap", "--no-progress", "--no-check")  # the files are placeholders: nothing to load
    assert r.exit_code == 0, r.output  # all here: no transfer was tried
    assert all(p.local is not None for p in plan_downloads(["clip", "clap"]))


def test_local_files_and_random_init_declare_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MCRGRAPH_CLIP_PRETRAINED", "none")
    monkeypatch.setenv("MCRGRAPH_CLAP_CHECKPOINT", str(tmp_path / "mine.pt"))
    monkeypatch.setenv("MCRGRAPH_CLAP_TOKENIZER", str(tmp_path))
    monkeypatch.setenv("MCRGRAPH_ULIP_CHECKPOINT", str(tmp_path / "my_ulip.pt"))
    r = run("download", "all", "--dry-run")
    assert r.exit_code == 0 and "0 of 0 files" in r.output, r.output


@pytest.mark.parametrize("space", ["clip", "clap"])
def test_download_through_a_hub_endpoint(hf_cache, monkeypatch, space):
    """`download clip` / `download clap` through huggingface_hub against a local server that
    answers as the hub does (X-Repo-Commit, ETag): one transfer a file, into the cache the
    space reads, after which it reports its weights present."""
    from huggingface_hub import constants
    from mcrgraph_clip import space as clip_space

    files = {f"/{p.download.repo_id}/resolve/{p.download.revision or 'main'}/{p.download.filename}": os.urandom(5_000)
             for p in plan_downloads([space])}
    for path, data in files.items():  # the test's bytes stand in for the pinned ones
        repo, rest = path[1:].split("/resolve/")
        revision, filename = rest.split("/", 1)
        if (repo, filename) in clip_space.PINS:
            monkeypatch.setitem(clip_space.PINS, (repo, filename), (revision, hashlib.sha256(data).hexdigest(), len(data)))
    with serve(files) as hub:
        hub.etags.update({path: f'"{hashlib.sha256(data).hexdigest()}"' for path, data in files.items()})
        hub.headers["X-Repo-Commit"] = "a" * 40
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        mcr = mcrgraph.get_mcr(space)
        assert mcr.weights_present() is False
        r = run("download", space, "--dry-run")
        assert all(f"from {hub.url}{path}" in r.output for path in files), r.output
        r = run("download", space, "--no-progress", "--no-check")  # random bytes stand for the files
        assert r.exit_code == 0, r.output
        assert mcr.weights_present() is True
        assert [len(hub.gets(path)) for path in files] == [1] * len(files)  # (the client also asks the hub's /api)
        for p in plan_downloads([space]):
            assert p.local.read_bytes() == files[f"/{p.download.repo_id}/resolve/{p.download.revision or 'main'}/{p.download.filename}"]
            assert str(p.local).startswith(str(hf_cache))
        r = run("download", space, "--no-progress", "--no-check")
        assert r.exit_code == 0 and [len(hub.gets(path)) for path in files] == [1] * len(files)  # all here: no second transfer
