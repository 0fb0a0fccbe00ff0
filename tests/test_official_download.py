"""`connect ... --official`: the released C-MCR / Ex-MCR heads fetched from a local server laid
out as raw.githubusercontent.com (MCRGRAPH_OFFICIAL_URL), checked against their git blob ids,
then imported as `import-official` does. Plus the `download` command and the plugins'
declared files. The files are written by the tests in the official key layout."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import socket

import pytest
import torch
from click.testing import CliRunner

import mcrgraph
from local_server import LocalServer, Served, block_internet
from mcrgraph.fetch import official
from mcrgraph.cli import cli
from mcrgraph.store.disk import connectors_dir
from test_official import CLAPCLIP_Head, Ex_MCR_Head, ULIPCLIP_Head, official as official_head

HEADS = {"clap-clip": CLAPCLIP_Head, "ulip-clip": ULIPCLIP_Head, "ex-clap": Ex_MCR_Head, "ex-ulip": Ex_MCR_Head}


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    refused = block_internet(monkeypatch)
    yield refused
    assert refused == [], f"the test tried to reach {refused}"


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def head_bytes(kind: str, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    torch.save(official_head(HEADS[kind], seed=seed).state_dict(), buf)
    return buf.getvalue()


def raw_path(kind: str) -> str:
    k = official.KINDS[kind]
    return f"/{k.repo}/main/checkpoints/{k.file}"


@pytest.fixture
def hub(monkeypatch):
    """A server with all four official files; their blob ids replace the real ones."""
    served = Served()
    for kind in official.KINDS:
        data = head_bytes(kind)
        served.files[raw_path(kind)] = data
        served.etags[raw_path(kind)] = f'"{blob_id(data)}"'  # GitHub's raw host sends a strong ETag: what a resume needs
        monkeypatch.setitem(official.KINDS, kind, dataclasses.replace(official.KINDS[kind], blob_id=blob_id(data)))
    with LocalServer(served) as server:
        monkeypatch.setenv(official.URL_ENV, server.url)
        yield served


def run(*args):
    r = CliRunner().invoke(cli, list(args))
    return r


def test_the_addresses_are_the_papers_repositories(monkeypatch):
    monkeypatch.delenv(official.URL_ENV, raising=False)
    assert official.official_url("clap-clip") == "https://raw.githubusercontent.com/MCR-PEFT/C-MCR/main/checkpoints/clap_clip.pt"
    assert official.official_url("ex-ulip") == "https://raw.githubusercontent.com/MCR-PEFT/Ex-MCR/main/checkpoints/ex_ulip.pt"
    assert {k: v.blob_id for k, v in official.KINDS.items()} == {
        "clap-clip": "61099f73eabf34a1f8da2ab11ffdd87db95b20b3", "ulip-clip": "350a714d9eef411985e353ba0306b885196f2610",
        "ex-clap": "f85c9a202324d9374c71b032fd9f42a9c818cf87", "ex-ulip": "50b8eff07c85a0cd1084de54537282deffe04567"}


def test_connect_official_downloads_checks_imports_and_reuses(hub):
    r = run("connect", "clip", "clap", "--via", "text", "--official", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "stored connector clip+clap (the official c-mcr heads" in r.output
    data = hub.files[raw_path("clap-clip")]
    card = mcrgraph.get_mcr("clip+clap").card
    assert f"sha256 {hashlib.sha256(data).hexdigest()}" in card.origin and "CC BY 4.0" in card.origin
    assert (official.official_dir() / "clap_clip.pt").read_bytes() == data
    assert len(hub.gets()) == 1
    r = run("connect", "clip", "clap", "--via", "text", "--official", "--overwrite", "--no-progress")
    assert r.exit_code == 0, r.output
    assert len(hub.gets()) == 1  # the verified file was reused: no second transfer


@pytest.mark.parametrize("args,kind,name", [
    (["clip", "ulip", "--via", "image"], "ulip-clip", "clip+ulip"),
    (["ulip", "clip"], "ulip-clip", "clip+ulip"),  # either order for C-MCR
    (["clip", "clap", "--method", "ex-mcr", "--via", "text"], "ex-clap", "clap-into-clip"),
    (["clip", "ulip", "--method", "ex-mcr"], "ex-ulip", "ulip-into-clip"),
])
def test_every_released_pair(hub, args, kind, name):
    r = run("connect", *args[:2], *(["--via", "image" if "ulip" in args else "text"] if "--via" not in args else []),
            *args[2:], "--official", "--no-progress")
    assert r.exit_code == 0, r.output
    assert f"stored connector {name}" in r.output
    assert [g[1] for g in hub.gets()] == [raw_path(kind)]
    assert mcrgraph.get_mcr(name).card.method == official.KINDS[kind].method


def test_pairs_without_released_heads_are_refused(hub):
    r = run("connect", "clap", "clip", "--via", "text", "--method", "ex-mcr", "--official")
    assert r.exit_code != 0 and "put it first" in r.output and "mcrgraph connect clip clap --method ex-mcr --official" in r.output
    r = run("connect", "clap", "ulip", "--via", "text", "--official")
    assert r.exit_code != 0 and "no official heads connect 'clap' and 'ulip'" in r.output
    r = run("connect", "clip", "clap", "--via", "image", "--official")
    assert r.exit_code != 0 and "via text, not image" in r.output
    r = run("connect", "clip", "clap", "--via", "text", "--official", "--epochs", "3")
    assert r.exit_code != 0 and "drop --epochs" in r.output
    r = run("connect", "clip", "clap", "--via", "text", "--official", "--limit", "5")
    assert r.exit_code != 0 and "drop --limit" in r.output
    assert hub.gets() == []  # nothing was fetched for any of them


def test_official_dry_run_names_the_file_and_fetches_nothing(hub):
    r = run("connect", "clip", "clap", "--via", "text", "--official", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would download" in r.output and raw_path("clap-clip") in r.output
    assert hub.gets() == []


def test_a_wrong_file_is_refused_and_nothing_is_kept(hub):
    hub.files[raw_path("clap-clip")] = head_bytes("clap-clip", seed=7)  # not the file the blob id names
    r = run("connect", "clip", "clap", "--via", "text", "--official", "--no-progress")
    assert r.exit_code != 0
    want, found = official.KINDS["clap-clip"].blob_id, blob_id(hub.files[raw_path("clap-clip")])
    assert want in r.output and found in r.output and "clap_clip.pt" in r.output
    assert not official.official_dir().exists() or list(official.official_dir().iterdir()) == []
    assert not connectors_dir().exists() or list(connectors_dir().iterdir()) == []


@pytest.mark.parametrize("ranges", [True, False])
def test_a_cut_download_resumes_or_restarts(hub, ranges):
    hub.ranges, hub.cut_after, hub.cuts = ranges, 1_000_000, 1  # clap_clip.pt is ~8.4 MB
    path = official.fetch_official("clap-clip", progress=False)
    assert path.read_bytes() == hub.files[raw_path("clap-clip")]
    assert sorted(p.name for p in path.parent.iterdir()) == ["clap_clip.pt"]
    assert [g[2] for g in hub.gets()] == [None, "bytes=1000000-"]


def test_a_file_kept_in_git_lfs_is_followed_and_checked(hub, monkeypatch):
    data = hub.files[raw_path("ex-clap")]
    pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
               f"size {len(data)}\n").encode()
    hub.files[raw_path("ex-clap")] = pointer  # what git holds, so what the blob id names
    hub.files["/lfs" + raw_path("ex-clap")] = data
    monkeypatch.setitem(official.KINDS, "ex-clap", dataclasses.replace(official.KINDS["ex-clap"], blob_id=blob_id(pointer)))
    path = official.fetch_official("ex-clap", progress=False)
    assert path.read_bytes() == data
    hub.files["/lfs" + raw_path("ex-clap")] = data[:-1] + b"x"  # the LFS bytes are checked too
    path.unlink()
    with pytest.raises(mcrgraph.ChecksumError, match="sha256 expected"):
        official.fetch_official("ex-clap", progress=False)
    assert not path.exists()


def test_offline_names_the_address_and_the_place(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(official.URL_ENV, f"http://127.0.0.1:{port}")
    r = run("connect", "clip", "clap", "--via", "text", "--official", "--no-progress")
    assert r.exit_code != 0
    assert f"http://127.0.0.1:{port}/MCR-PEFT/C-MCR/main/checkpoints/clap_clip.pt" in r.output
    assert str(official.official_dir() / "clap_clip.pt") in r.output.replace("\n", "")
