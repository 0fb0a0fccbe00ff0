"""Shared media helpers: batched, prefetched decoding keeps order and raises errors as they are."""
from __future__ import annotations

import pytest

from mcrgraph.io import media
from mcrgraph.errors import DataError
from mcrgraph.io.media import parallel_map, prefetched
from mcrgraph.io.pointcloud import load_point_cloud


@pytest.mark.parametrize("n,batch,workers", [(0, 4, 2), (3, 4, 2), (4, 4, 2), (17, 4, 3), (50, 8, 4), (9, 2, 1)])
def test_prefetched_batches_are_in_order_and_complete(n, batch, workers):
    batches = list(prefetched(lambda x: x * 10, list(range(n)), batch, workers))
    assert [y for b in batches for y in b] == [x * 10 for x in range(n)]
    assert all(len(b) == batch for b in batches[:-1]) and all(len(b) <= batch for b in batches)


def test_errors_surface_unchanged():
    def fn(x):
        if x == 13:
            raise DataError("item 13 is bad")
        return x

    with pytest.raises(DataError, match="item 13 is bad"):
        list(prefetched(fn, list(range(40)), 8, 3))
    with pytest.raises(DataError, match="item 13 is bad"):
        parallel_map(fn, list(range(40)), 3)


@pytest.mark.parametrize("read, what", [
    (lambda p: media.read_audio(p), "sound file"),
    (lambda p: media.pil_image(p), "image file"),
    (lambda p: load_point_cloud(p), "point cloud file"),
])
def test_a_missing_file_says_it_does_not_exist(read, what, tmp_path):
    """Not "cannot read it as a sound file (Error opening ...: System error.)" (issue 20)."""
    with pytest.raises(DataError, match=rf"^{what} '/nonexistent\.\w+' does not exist; check the path$"):
        read("/nonexistent." + {"sound file": "wav", "image file": "png", "point cloud file": "ply"}[what])
    with pytest.raises(DataError, match=rf"^{what} '{tmp_path}' is a folder"):
        read(tmp_path)
    link = tmp_path / "gone.wav"
    link.symlink_to(tmp_path / "never-there")
    with pytest.raises(DataError, match="does not exist \\(a broken link\\)"):
        read(link)


def test_an_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    from mcrgraph.io import files

    f = tmp_path / "locked.wav"
    f.write_bytes(b"RIFF")
    monkeypatch.setattr(files.os, "access", lambda path, mode: False)  # as a non-root user without read rights sees it
    with pytest.raises(DataError, match="cannot be read: permission denied"):
        media.read_audio(f)
