"""The real addresses (opt-in: ``pytest -m online``; skipped otherwise). The official heads are
fetched from GitHub and checked against the blob ids in mcrgraph.fetch.official, then imported onto
the installed clip/clap/ulip spaces (no encoder weights are needed to import); the encoder
files' hosts are asked for their sizes, without downloading them."""
from __future__ import annotations

import pytest

from mcrgraph.fetch import official
from mcrgraph.fetch.download import remote_size
from mcrgraph.fetch.encoders import plan_downloads

pytestmark = pytest.mark.online


@pytest.mark.parametrize("kind", sorted(official.KINDS))
def test_official_heads_download_verify_and_import(kind, monkeypatch):
    monkeypatch.delenv(official.URL_ENV, raising=False)
    path = official.fetch_official(kind, progress=False)  # raises ChecksumError on a blob id mismatch
    assert path.is_file() and path.stat().st_size > 100_000
    space = official.import_official(path, kind)
    assert space.card.method == official.KINDS[kind].method


@pytest.mark.parametrize("space", ["clip", "clap", "ulip"])
def test_encoder_files_are_where_the_plugins_say(space, monkeypatch):
    monkeypatch.delenv("MCRGRAPH_ULIP_URL", raising=False)
    # plain HTTP HEAD requests (the offline suite's HF_HUB_OFFLINE does not apply to them)
    for p in plan_downloads([space]):
        size = remote_size(p.download.address(), timeout=30)
        assert size, f"{p.download.what}: {p.download.address()} gave no size"
