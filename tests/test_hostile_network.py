"""Downloads against a 127.0.0.1 server that misbehaves on purpose (issue 24): each numbered case
of the issue is served here the way it failed, beside a control the same code passes. The
hand-written client (GitHub heads) and the guard around huggingface_hub's client (hub files,
corpus shards) are both covered; docs/reliability.md ("Hostile networks") is the table of them."""
from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time

import pytest

from hostile_server import hostile, honest, point_hub_at, raw, redirect, sequence
from local_server import block_internet
from mcrgraph.errors import ChecksumError, ConnectorFileError, DataError, DownloadError
from mcrgraph.fetch import download as web, guard, hub

DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
FAST = guard.Limits(min_rate=1_000, window=1.0)  # a 1-second window keeps the stall cases short


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    refused = block_internet(monkeypatch)
    monkeypatch.setenv(guard.ENV_WINDOW, "1")
    monkeypatch.setenv(guard.ENV_RATE, "1000")
    yield refused
    assert refused == [], f"the test tried to reach {refused}"


@pytest.fixture
def server():
    with hostile() as s:
        yield s


def get(server, path="/f.bin", **kw):
    return web.fetch(server.url + path, kw.pop("dest"), progress=False, **kw)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def resumed_with(etag: str, rest: bytes):
    """A transfer cut after 100,000 bytes, a 206 answering the resume with ``rest`` under ``etag``, then honest."""
    return sequence(honest(DATA, cut_first=100_000),
                    lambda h: h.send(206, {"ETag": etag, "Content-Range": f"bytes 100000-{len(DATA) - 1}/{len(DATA)}"}, rest),
                    honest(DATA))


# -- 1. credentials stay with their origin ----------------------------------------------------
def test_1_a_token_is_not_carried_to_another_origin(tmp_path):
    with hostile() as a, hostile() as b:
        b.routes["/f.bin"] = honest(DATA)
        a.routes["/same"] = redirect("/f2.bin")
        a.routes["/f2.bin"] = honest(DATA)
        a.routes["/away"] = redirect(b.url + "/f.bin")
        with web._request(a.url + "/same", {"Authorization": "Bearer secret"}, 5):
            pass  # control: the same origin keeps it
        with web._request(a.url + "/away", {"Authorization": "Bearer secret"}, 5):
            pass
        assert a.gets("/f2.bin")[0].headers.get("Authorization") == "Bearer secret"
        assert "Authorization" not in b.gets("/f.bin")[0].headers


def test_1_the_hub_client_keeps_the_token_off_a_redirects_host(tmp_path, monkeypatch):
    """Corpus shards used to go through urllib with the hub's Authorization header; they now go
    through the hub client's session, which drops it when a redirect leaves the origin."""
    with hostile() as hub_server, hostile() as cdn:
        cdn.routes["/blob"] = honest(DATA)
        hub_server.routes["/datasets/o/r/resolve/" + "a" * 40 + "/x.tar"] = redirect(cdn.url + "/blob")
        point_hub_at(monkeypatch, hub_server.url)
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
        f = hub.HubFile("o/r", "x.tar", revision="a" * 40, repo_type="dataset", size=len(DATA))
        with hub.stream(f) as r:
            assert r.read() == DATA
        assert hub_server.gets("/datasets/o/r/resolve/" + "a" * 40 + "/x.tar")[0].headers.get("Authorization") == "Bearer hf_secret"  # control
        assert "Authorization" not in cdn.gets("/blob")[0].headers


# -- 2. nothing unchecked, sizes enforced, no resume without a strong validator ----------------
def test_2_a_file_with_no_digest_is_not_fetched(server, tmp_path):
    server.routes["/f.bin"] = honest(DATA)
    with pytest.raises(DownloadError, match="no digest"):
        get(server, dest=tmp_path / "f.bin")
    assert server.gets() == []
    assert get(server, dest=tmp_path / "f.bin", sha256=SHA).read_bytes() == DATA  # control


def test_2_a_truncated_body_without_content_length_is_not_installed(server, tmp_path):
    cut = lambda h: h.send(200, {"Content-Length": None, "ETag": '"v1"'}, DATA, cut=100_000)  # noqa: E731
    server.routes["/f.bin"] = sequence(cut, honest(DATA))
    dest = get(server, dest=tmp_path / "f.bin", sha256=SHA, size=len(DATA))
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]
    server.routes["/g.bin"] = cut  # always cut: refused, nothing at dest
    with pytest.raises(DownloadError, match="failed 3 times"):
        get(server, "/g.bin", dest=tmp_path / "g.bin", sha256=SHA, size=len(DATA))
    assert not (tmp_path / "g.bin").exists()


def test_2_an_over_long_206_restarts_from_zero(server, tmp_path):
    def long206(h):
        start = h.asked()
        h.send(206, {"ETag": '"v1"', "Content-Range": f"bytes {start}-{len(DATA) + 5_000}/{len(DATA) + 5_001}"},
               DATA[start:] + os.urandom(5_001))
    server.routes["/f.bin"] = sequence(honest(DATA, cut_first=100_000), long206, honest(DATA))
    dest = get(server, dest=tmp_path / "f.bin", sha256=SHA, size=len(DATA))
    assert dest.read_bytes() == DATA
    assert [g.headers.get("Range") for g in server.gets()] == [None, "bytes=100000-", None]  # the third starts over


def test_2_a_206_of_another_version_is_not_spliced(server, tmp_path):
    other = os.urandom(len(DATA))
    server.routes["/f.bin"] = resumed_with('"v2"', other[100_000:])
    dest = get(server, dest=tmp_path / "f.bin", sha256=SHA)
    assert dest.read_bytes() == DATA
    assert server.gets()[1].headers.get("If-Range") == '"v1"'  # asked for the rest of v1 only
    assert server.gets()[2].headers.get("Range") is None  # v2 answered: from zero


def test_2_no_validator_means_no_resume(server, tmp_path):
    server.routes["/f.bin"] = honest(DATA, etag=None, cut_first=100_000)  # no ETag at all
    dest = get(server, dest=tmp_path / "f.bin", sha256=SHA)
    assert dest.read_bytes() == DATA
    assert [g.headers.get("Range") for g in server.gets()] == [None, None]


def test_2_a_pointer_served_for_a_hub_file_is_refused(tmp_path, monkeypatch):
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{SHA}\nsize {len(DATA)}\n".encode()
    with hub_serving(monkeypatch, {"model.bin": pointer}, etag=SHA, listed=len(DATA)) as s:
        f = hub.HubFile("o/r", "model.bin", revision="a" * 40, sha256=SHA, size=len(DATA))
        with pytest.raises((ChecksumError, DownloadError)):
            hub.fetch(f, cache_dir=str(tmp_path), progress=False)
        assert not list(tmp_path.rglob("model.bin"))
        s.routes[resolve("model.bin")] = hub_route(DATA, SHA)  # control: the real bytes install
        assert hub.fetch(f, cache_dir=str(tmp_path), progress=False).read_bytes() == DATA


# -- 3. an unreadable or wrong Content-Range -------------------------------------------------
@pytest.mark.parametrize("spec", ["bytes 0-10/20", "garbage", "bytes 100000-99/300000", ""])
def test_3_a_bad_content_range_restarts_and_does_not_stick(server, tmp_path, spec):
    server.routes["/f.bin"] = sequence(honest(DATA, cut_first=100_000),
                                       lambda h: h.send(206, {"ETag": '"v1"', "Content-Range": spec}, DATA[100_000:]),
                                       honest(DATA))
    dest = get(server, dest=tmp_path / "f.bin", sha256=SHA)
    assert dest.read_bytes() == DATA and leftovers(tmp_path) == ["f.bin"]


# -- 4. a stall is noticed by rate, not only by silence --------------------------------------
def test_4_a_byte_a_second_is_a_stall_with_a_clear_message(server, tmp_path):
    server.routes["/f.bin"] = lambda h: h.send(200, {"ETag": '"v1"'}, DATA[:200], trickle=0.05)
    started = time.monotonic()
    with pytest.raises(DownloadError) as e:
        get(server, dest=tmp_path / "f.bin", sha256=hashlib.sha256(DATA[:200]).hexdigest(), attempts=1)
    assert time.monotonic() - started < 5
    assert "below the minimum" in str(e.value) and guard.ENV_RATE in str(e.value) and "\n" not in str(e.value)


def test_4_a_slow_link_setting_lets_it_through(server, tmp_path, monkeypatch):
    monkeypatch.setenv(guard.ENV_RATE, "0")  # the setting for slow links
    server.routes["/f.bin"] = lambda h: h.send(200, {"ETag": '"v1"'}, DATA[:40], trickle=0.05)
    assert get(server, dest=tmp_path / "f.bin", sha256=hashlib.sha256(DATA[:40]).hexdigest()).read_bytes() == DATA[:40]


def test_4_meter_arithmetic():
    clock = iter(range(100)).__next__
    m = guard.Meter("x", 10_000, guard.Limits(min_rate=100, window=10), clock=lambda: float(clock()))
    for _ in range(12):
        m.add(150)  # 150 B/s: above the minimum
    with pytest.raises(guard.Stalled):
        for _ in range(12):
            m.add(50)  # 50 B/s for a whole window: below
    with pytest.raises(guard.TransferRefused, match="more than the file's 100 bytes"):
        guard.Meter("y", 100, guard.Limits()).add(101)


# -- 5. the known size caps the transfer -----------------------------------------------------
def test_5_a_body_longer_than_the_file_is_cut_off_early(server, tmp_path):
    big = DATA + os.urandom(40_000_000)
    server.routes["/f.bin"] = lambda h: h.send(200, {"ETag": '"v1"', "Content-Length": None}, big)
    with pytest.raises(DownloadError):
        get(server, dest=tmp_path / "f.bin", sha256=SHA, size=len(DATA), attempts=1)
    assert leftovers(tmp_path) == []
    assert server.sent["/f.bin"] < 16_000_000  # it stopped reading soon after the size (loopback buffers hold a few MB)


# -- 6. redirects ----------------------------------------------------------------------------
def test_6_http_to_ftp_is_not_followed(server, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    server.routes["/f.bin"] = redirect(f"ftp://127.0.0.1:{port}/f.bin")
    with pytest.raises(DownloadError, match="http\\(s\\) only"):
        get(server, dest=tmp_path / "f.bin", sha256=SHA)
    with pytest.raises(socket.timeout):
        listener.accept()  # nothing connected to the ftp port
    listener.close()


def test_6_https_down_to_http_is_refused():
    import urllib.request

    req = urllib.request.Request("https://example.org/f.bin")
    with pytest.raises(DownloadError, match="down to plain http"):
        web._Redirects().redirect_request(req, None, 302, "Found", {}, "http://example.org/f.bin")


def test_6_a_redirect_loop_is_one_line_and_one_redirect_is_followed(server, tmp_path):
    server.routes["/loop"] = redirect("/loop")
    with pytest.raises(DownloadError) as e:
        get(server, "/loop", dest=tmp_path / "f.bin", sha256=SHA)
    assert "redirects" in str(e.value) and "\n" not in str(e.value)
    server.routes["/moved"] = redirect("/f.bin")  # control
    server.routes["/f.bin"] = honest(DATA)
    assert get(server, "/moved", dest=tmp_path / "f.bin", sha256=SHA).read_bytes() == DATA


# -- 7. malformed answers are retried and end in one line -------------------------------------
@pytest.mark.parametrize("answer", [
    raw(b"garbage\r\n\r\n"),
    raw(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n"),
    redirect("http://127.0.0.1:99999999/f.bin"),
], ids=["status line", "70 kB header line", "bad port in Location"])
def test_7_malformed_answers_are_retried_then_one_line(server, tmp_path, answer):
    server.routes["/f.bin"] = answer
    with pytest.raises(DownloadError) as e:
        get(server, dest=tmp_path / "f.bin", sha256=SHA)
    assert "failed 3 times" in str(e.value) and "\n" not in str(e.value)
    assert len(server.gets("/f.bin")) == 3  # retried like any transient failure
    server.routes["/f.bin"] = sequence(answer, honest(DATA))  # control: once malformed, then fine
    assert get(server, dest=tmp_path / "f.bin", sha256=SHA).read_bytes() == DATA


# -- 10. messages ----------------------------------------------------------------------------
def test_10_a_bad_resume_is_retried_whole_before_anyone_is_blamed(server, tmp_path):
    wrong = os.urandom(len(DATA))
    server.routes["/f.bin"] = resumed_with('"v1"', wrong[100_000:])
    assert get(server, dest=tmp_path / "f.bin", sha256=SHA).read_bytes() == DATA
    server.routes["/g.bin"] = honest(wrong)  # control: a fresh transfer that is wrong is refused
    with pytest.raises(ChecksumError) as e:
        get(server, "/g.bin", dest=tmp_path / "g.bin", sha256=SHA)
    assert "from a whole fresh transfer" in str(e.value) and SHA in str(e.value)


def test_10_a_weak_etag_is_never_sent_in_if_range(server, tmp_path):
    server.routes["/f.bin"] = honest(DATA, etag='W/"v1"', cut_first=100_000)
    assert get(server, dest=tmp_path / "f.bin", sha256=SHA).read_bytes() == DATA
    assert all("If-Range" not in g.headers and "Range" not in g.headers for g in server.gets())


# -- the hub: hf_hub_download with the guard around it ----------------------------------------
REV = "a" * 40


def resolve(filename: str) -> str:
    return f"/o/r/resolve/{REV}/{filename}"


def hub_route(data: bytes, etag: str, listed: int | None = None, **kw):
    """The hub's answer for a file: its ETag (an LFS file's sha256), commit and listed size on
    HEAD (X-Linked-Size), the bytes on GET."""
    inner = honest(data, etag=f'"{etag}"', extra={"X-Repo-Commit": REV, "X-Linked-Size": str(listed or len(data))}, **kw)
    return inner


class hub_serving:
    def __init__(self, monkeypatch, files: dict[str, bytes], etag: str, listed: int | None = None):
        self.monkeypatch, self.files, self.etag, self.listed = monkeypatch, files, etag, listed

    def __enter__(self):
        self.cm = hostile()
        s = self.cm.__enter__()
        for name, data in self.files.items():
            s.routes[resolve(name)] = hub_route(data, self.etag, self.listed)
        point_hub_at(self.monkeypatch, s.url)
        return s

    def __exit__(self, *exc):
        self.cm.__exit__(*exc)


def test_11_hub_control_then_a_spliced_resume_is_refused(tmp_path, monkeypatch):
    """12 MiB, as in the issue: huggingface_hub writes 10 MiB chunks, so a cut after the first
    one is resumed with a Range request, which the hub client sends without If-Range."""
    data = os.urandom(12 << 20)
    sha = hashlib.sha256(data).hexdigest()
    with hub_serving(monkeypatch, {"w.bin": data}, sha) as s:
        f = hub.HubFile("o/r", "w.bin", revision=REV, sha256=sha, size=len(data))
        assert hub.fetch(f, cache_dir=str(tmp_path / "a"), progress=False).read_bytes() == data  # control
        other = os.urandom(len(data))
        splice = lambda h: h.send(206, {"ETag": '"other"', "Content-Range": f"bytes {h.asked()}-{len(data) - 1}/{len(data)}"},  # noqa: E731
                                  other[h.asked():])
        s.routes[resolve("w.bin")] = sequence(hub_route(data, sha, cut_first=11 << 20), splice, hub_route(data, sha))
        path = hub.fetch(f, cache_dir=str(tmp_path / "b"), progress=False)
        assert path.read_bytes() == data
        ranges = [(g.headers.get("Range"), g.headers.get("If-Range")) for g in s.gets(resolve("w.bin"))][-3:]
        assert ranges == [(None, None), (f"bytes={10 << 20}-", f'"{sha}"'), (None, None)]  # the resume named its version; then from zero


def test_11_hub_body_past_the_listed_size_is_stopped_early(tmp_path, monkeypatch):
    big = os.urandom(40_000_000)
    with hub_serving(monkeypatch, {"w.bin": big}, SHA, listed=1_000) as s:
        s.routes[resolve("w.bin")] = lambda h: h.send(200, {"ETag": f'"{SHA}"', "X-Repo-Commit": REV, "X-Linked-Size": "1000",
                                                         "Content-Length": None if h.command == "GET" else "1000"}, big)
        with pytest.raises(DownloadError, match="more than the file's 1,000 bytes"):
            hub.fetch(hub.HubFile("o/r", "w.bin", revision=REV), cache_dir=str(tmp_path), progress=False)
        assert s.sent[resolve("w.bin")] < 16_000_000  # (loopback socket buffers hold a few MB)
        assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.stat().st_size > 1_000]


def test_11_hub_trickle_stalls_out(tmp_path, monkeypatch):
    small = DATA[:400]
    with hub_serving(monkeypatch, {"w.bin": small}, hashlib.sha256(small).hexdigest()) as s:
        s.routes[resolve("w.bin")] = lambda h: h.send(200, {"ETag": f'"{hashlib.sha256(small).hexdigest()}"', "X-Repo-Commit": REV},
                                                       small, trickle=0.02 if h.command == "GET" else 0)
        started = time.monotonic()
        with pytest.raises(DownloadError, match="below the minimum"):
            hub.fetch(hub.HubFile("o/r", "w.bin", revision=REV), cache_dir=str(tmp_path), progress=False)
        assert time.monotonic() - started < 10


def test_11_hub_a_wrong_file_is_refused_with_expected_and_found(tmp_path, monkeypatch):
    wrong = os.urandom(len(DATA))
    with hub_serving(monkeypatch, {"w.bin": wrong}, SHA):
        with pytest.raises(ChecksumError) as e:
            hub.fetch(hub.HubFile("o/r", "w.bin", revision=REV, sha256=SHA), cache_dir=str(tmp_path), progress=False)
        found = hashlib.sha256(wrong).hexdigest()
        assert f"sha256 expected {SHA}, found {found}" in str(e.value) and "\n" not in str(e.value)
        assert not [p for p in tmp_path.rglob("w.bin")]


# -- 9. Git LFS: the pointer validated, a stored one re-checked, the steps under one lock -------
@pytest.fixture
def lfs(server, monkeypatch, tmp_path):
    """ex_clap.pt kept in Git LFS on a mirror laid out as raw.githubusercontent.com: the pointer
    at the raw address (what the blob id names), the bytes at <mirror>/lfs/..."""
    import dataclasses

    from mcrgraph.fetch import official

    monkeypatch.setenv("MCRGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(official.URL_ENV, server.url)
    k = official.KINDS["ex-clap"]
    raw_path = f"/{k.repo}/main/checkpoints/{k.file}"
    data = os.urandom(3_000_000)

    def publish(pointer: bytes):
        blob = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
        monkeypatch.setitem(official.KINDS, "ex-clap", dataclasses.replace(k, blob_id=blob))
        server.routes[raw_path] = honest(pointer, etag=f'"{blob}"')

    good = f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n".encode()
    publish(good)
    server.routes["/lfs" + raw_path] = honest(data)
    return official, publish, data, good


def test_9_a_pointer_whose_oid_is_not_a_sha256_is_refused(lfs):
    official, publish, data, good = lfs
    publish(b"version https://git-lfs.github.com/spec/v1\noid sha256:xyz\nsize 3000000\n")
    with pytest.raises(ConnectorFileError, match="not a Git LFS pointer mcrgraph can check against"):
        official.fetch_official("ex-clap", progress=False)
    publish(good)  # control
    assert official.fetch_official("ex-clap", progress=False).read_bytes() == data


def test_9_a_stored_pointer_is_checked_again(lfs, server):
    official, publish, data, good = lfs
    path = official.fetch_official("ex-clap", progress=False)
    pointer = path.with_name(path.name + ".lfs-pointer")
    evil = os.urandom(len(data))
    pointer.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(evil).hexdigest()}\nsize {len(evil)}\n")
    path.unlink()
    assert official.fetch_official("ex-clap", progress=False).read_bytes() == data  # the tampered pointer was not trusted
    assert hashlib.sha1(b"blob %d\0" % len(good) + good).hexdigest() == official.KINDS["ex-clap"].blob_id
    assert pointer.read_bytes() == good


def test_9_two_fetchers_never_show_a_half_done_file(lfs):
    official, publish, data, good = lfs
    dest = official.official_dir() / official.KINDS["ex-clap"].file
    seen: set[int] = set()
    stop = threading.Event()

    def watch():
        present = False
        while not stop.is_set():
            try:
                seen.add(dest.stat().st_size)
                present = True
            except FileNotFoundError:
                seen.add(-1 if present else 0)  # -1: it vanished after it was there
            time.sleep(0.0005)

    errors = []
    watcher = threading.Thread(target=watch)
    watcher.start()
    workers = [threading.Thread(target=lambda: errors.append(None) if official.fetch_official("ex-clap", progress=False) else None)
               for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    stop.set()
    watcher.join()
    assert len(errors) == 2 and dest.read_bytes() == data
    assert seen <= {0, len(data)}, seen  # never the 132-byte pointer, never gone once there


def test_2_every_declared_file_is_pinned_or_says_why_not(tmp_path):
    from mcrgraph.fetch.download import Download

    with pytest.raises(ValueError, match="pinned revision"):
        Download("w", repo_id="o/r", filename="f.bin")
    with pytest.raises(ValueError, match="git blob id or sha256"):
        Download("w", url="http://127.0.0.1/f.bin", dest=tmp_path / "f.bin")
    pinned = Download("w", repo_id="o/r", filename="f.bin", revision=REV, sha256=SHA)
    loose = Download("w", repo_id="o/r", filename="f.bin", unpinned="not readable offline")
    assert pinned.digest() == f"sha256 {SHA}"
    assert loose.digest().startswith("NOT PINNED (not readable offline)")
