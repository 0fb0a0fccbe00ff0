"""mcrgraph.fetch.download.fetch against a local HTTP server: verified files only ever appear at the
destination, a cut transfer resumes (Range) or restarts (no Range), a verified file is reused
with no second request, a wrong digest is refused with nothing left behind."""
from __future__ import annotations

import hashlib
import os

import pytest

from local_server import serve
from mcrgraph.fetch.download import fetch, git_blob_id, human_size
from mcrgraph.errors import ChecksumError, DownloadError

DATA = os.urandom(300_000)
BLOB = hashlib.sha1(b"blob %d\0" % len(DATA) + DATA).hexdigest()
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def served():
    with serve({"/f.bin": DATA}) as s:
        s.etags["/f.bin"] = '"v1"'  # a strong validator: what a resume needs (tests/test_hostile_network.py: without one)
        yield s


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_git_blob_id_is_gits(tmp_path):
    p = tmp_path / "hello"
    p.write_bytes(b"hello\n")
    assert git_blob_id(p) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"


def test_fetch_verifies_and_reuses_without_a_second_transfer(tmp_path, served):
    dest = tmp_path / "sub" / "f.bin"
    assert fetch(served.url + "/f.bin", dest, blob_id=BLOB, progress=True) == dest  # the bar runs too
    assert dest.read_bytes() == DATA and leftovers(dest.parent) == ["f.bin"]
    assert fetch(served.url + "/f.bin", dest, blob_id=BLOB, sha256=SHA, progress=False) == dest
    assert len(served.gets()) == 1  # the second call found the verified file: no request at all


def test_a_changed_local_file_is_fetched_again(tmp_path, served):
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"something else")
    fetch(served.url + "/f.bin", dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA and len(served.gets()) == 1


def test_a_wrong_digest_is_refused_and_nothing_is_left(tmp_path, served):
    dest = tmp_path / "f.bin"
    wrong = "0" * 40
    with pytest.raises(ChecksumError) as e:
        fetch(served.url + "/f.bin", dest, blob_id=wrong, progress=False)
    msg = str(e.value)
    assert wrong in msg and BLOB in msg and str(dest) in msg  # expected, found, which file
    assert leftovers(tmp_path) == []  # no dest, no .part


@pytest.mark.parametrize("ranges", [True, False])
def test_a_cut_connection_resumes_or_restarts(tmp_path, served, ranges):
    served.ranges, served.cut_after, served.cuts = ranges, 100_000, 1
    dest = tmp_path / "f.bin"
    fetch(served.url + "/f.bin", dest, blob_id=BLOB, progress=False)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]
    first, second = served.gets()
    assert first[2] is None
    assert second[2] == "bytes=100000-"  # asked to resume where the cut left it
    assert served.statuses == [200, 206 if ranges else 200]
    # with Range the server sent the rest (206), without it all of it again (200): both verify


def test_cuts_on_every_attempt_keep_the_part_and_a_later_call_resumes(tmp_path, served):
    served.cut_after, served.cuts = 50_000, 3
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=r"failed 3 times.*150,000 bytes received are kept in .*f\.bin\.part"):
        fetch(served.url + "/f.bin", dest, blob_id=BLOB, progress=False)
    assert not dest.exists() and (tmp_path / "f.bin.part").stat().st_size == 150_000
    fetch(served.url + "/f.bin", dest, blob_id=BLOB, progress=False)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]
    assert served.gets()[-1][2] == "bytes=150000-"


def test_a_part_of_an_older_version_is_not_resumed_with_the_new_one(tmp_path, served):
    """The .part remembers the ETag it was written under; a resume asks for the rest of that
    version only (If-Range), so a file replaced upstream in between restarts from zero."""
    old = os.urandom(300_000)
    served.files["/f.bin"], served.etags["/f.bin"] = old, '"v1"'
    served.cut_after, served.cuts = 100_000, 1
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError):
        fetch(served.url + "/f.bin", dest, sha256=SHA, progress=False, attempts=1)
    assert (tmp_path / "f.bin.part").stat().st_size == 100_000
    served.files["/f.bin"], served.etags["/f.bin"] = DATA, '"v2"'  # replaced upstream
    fetch(served.url + "/f.bin", dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]
    assert served.requests[-1][2] == "bytes=100000-" and served.statuses == [200, 200]  # asked to resume, sent the new file whole


def test_a_resume_of_the_same_version_continues(tmp_path, served):
    served.etags["/f.bin"] = '"v1"'
    served.cut_after, served.cuts = 100_000, 1
    dest = tmp_path / "f.bin"
    fetch(served.url + "/f.bin", dest, blob_id=BLOB, progress=False)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]
    assert served.statuses == [200, 206]  # the rest only


def test_a_part_the_server_does_not_know_restarts_cleanly(tmp_path, served):
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(os.urandom(400_000))  # longer than the file: 416
    fetch(served.url + "/f.bin", dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]


def test_a_stale_part_with_wrong_bytes_is_not_resumed(tmp_path, served):
    """A .part with no record of the version it holds proves nothing: the download starts over
    (before issue 24 it was resumed, refused, and the user had to run it again)."""
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * 1000)  # a prefix that is not the file's
    fetch(served.url + "/f.bin", dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]
    assert served.requests[-1][2] is None  # no Range asked


def test_missing_file_and_offline_say_what_to_do(tmp_path, served):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(served.url + "/nope.bin", tmp_path / "nope.bin", sha256=SHA, progress=False)
    # a port nobody listens on: connection refused, as offline
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.bin"
    with pytest.raises(DownloadError) as e:
        fetch(url, tmp_path / "f.bin", sha256=SHA, progress=False, attempts=1)
    assert "offline" in str(e.value) and url in str(e.value) and str(tmp_path / "f.bin") in str(e.value)
    assert leftovers(tmp_path) == []


def test_human_size():
    assert human_size(None) == "size unknown" and human_size(999) == "999 B" and human_size(8_400_000) == "8.4 MB"


def test_an_unwritable_place_is_a_clear_error(tmp_path, served):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DownloadError, match="cannot create"):
        fetch(served.url + "/f.bin", blocker / "f.bin", sha256=SHA, progress=False)
    assert served.gets() == []
