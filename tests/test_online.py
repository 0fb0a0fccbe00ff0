"""The real addresses (opt-in: ``pytest -m online``; skipped otherwise). The official heads are
fetched from GitHub and checked against the blob ids in mcrgraph.fetch.official, then imported onto
the installed clip/clap/ulip spaces (no encoder weights are needed to import); the encoder
files' hosts are asked for their sizes, without downloading them."""
from __future__ import annotations

import pytest

from mcrgraph.fetch import official
from mcrgraph.fetch.encoders import plan_downloads

pytestmark = pytest.mark.online


@pytest.mark.parametrize("kind", sorted(official.KINDS))
def test_official_heads_download_verify_and_import(kind, monkeypatch):
    monkeypatch.delenv(official.URL_ENV, raising=False)
    path = official.fetch_official(kind, progress=False)  # raises ChecksumError on a blob id mismatch
    assert path.is_file() and path.stat().st_size > 100_000
    space = official.import_official(path, kind)
    assert space.card.method == official.KINDS[kind].method


@pytest.fixture
def hub_online(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


@pytest.mark.parametrize("space", ["clip", "clap", "ulip"])
def test_pins_match_the_hub(space, hub_online):
    """Every declared hub file is at its pinned commit with its pinned size and sha256 (the hub's
    ETag of an LFS file; a small file's ETag is its git blob id). A file whose digest is not
    pinned fails here with the digest to pin, so the missing pin stays visible."""
    from huggingface_hub import get_hf_file_metadata

    missing = []
    for p in plan_downloads([space]):
        d = p.download
        meta = get_hf_file_metadata(d.address(), timeout=30)
        assert meta.size, f"{d.what}: {d.address()} gave no size"
        if d.revision:
            assert meta.commit_hash == d.revision, f"{d.what}: commit {meta.commit_hash}, pinned {d.revision}"
        if d.size is not None:
            assert meta.size == d.size, f"{d.what}: {meta.size} bytes on the hub, pinned {d.size}"
        if d.sha256:
            assert meta.etag == d.sha256, f"{d.what}: the hub's sha256 is {meta.etag}, pinned {d.sha256}"
        else:
            missing.append(f"{d.what}: commit {meta.commit_hash}, size {meta.size}, ETag {meta.etag} ({d.unpinned})")
    assert not missing, "not pinned yet: " + "; ".join(missing)


def test_ulip_is_where_the_plugin_looks(hub_online):
    """SFXX/ulip holds the file the ulip plugin fetches (salesforce/ULIP README: the Google Cloud
    files moved there), listed by the hub itself."""
    from huggingface_hub import list_repo_files
    from mcrgraph_ulip import space as ulip

    files = list_repo_files(ulip.HUB_REPO, repo_type="dataset")
    assert ulip.HUB_FILE in files, [f for f in files if "pointbert" in f.lower() or f.endswith(".pt")][:40]
