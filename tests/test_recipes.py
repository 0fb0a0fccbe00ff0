"""Default recipes (mcrgraph/fetch/recipes.py) and fetching their corpora (mcrgraph/fetch/corpora.py), on
real code paths without the internet: a dataset repository in the hub's layout, served by the
standard library's HTTP server on 127.0.0.1 and reached through huggingface_hub's endpoint
setting (HF_ENDPOINT). Requests are counted, so "no second transfer" is checked, not assumed."""
from __future__ import annotations

import collections
import hashlib
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import mcrgraph
from mcrgraph.fetch import corpora, recipes
from mcrgraph.cli import cli
from hostile_server import point_hub_at
from mcrgraph.errors import DataError

REV_T = "a" * 40
REV_P = "b" * 40


class Hub(http.server.ThreadingHTTPServer):
    """Serves ``root/<repo>/<revision>/<path>`` at ``/datasets/<repo>/resolve/<revision>/<path>``,
    as the hub does, and counts the requests per path."""

    def __init__(self, root: Path):
        self.root, self.hits = root, collections.Counter()
        self.cut: set[str] = set()  # paths whose next response breaks off halfway
        self.short: set[str] = set()  # paths answered with no Content-Length and half the bytes, every time
        self.claims: dict[str, int] = {}  # path -> the size HEAD lists instead of the real one
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    """The hub's answers as huggingface_hub reads them: the commit (X-Repo-Commit) and an ETag (a
    file's sha256, as for an LFS file) on HEAD and GET, then the bytes."""

    def _file(self):
        prefix = "/datasets/"
        parts = self.path[len(prefix):].split("/resolve/", 1) if self.path.startswith(prefix) else []
        f = self.server.root / parts[0] / parts[1] if len(parts) == 2 else None
        return (f, parts[1].split("/", 1)[0]) if f is not None and f.is_file() else (None, None)

    def _headers(self, data: bytes, revision: str, length: int | None = -1):
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(len(data) if length == -1 else length))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", revision)
        self.end_headers()

    def do_HEAD(self):  # noqa: N802 - the standard library's name
        f, revision = self._file()
        if f is None:
            self.send_error(404)
            return
        self._headers(f.read_bytes(), revision, self.server.claims.get(self.path, -1))

    def do_GET(self):  # noqa: N802 - the standard library's name
        self.server.hits[self.path] += 1
        f, revision = self._file()
        if f is None:
            self.send_error(404)
            return
        data = f.read_bytes()
        if self.path in self.server.short:
            self._headers(data, revision, None)
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self._headers(data, revision)
        if self.path in self.server.cut:
            self.server.cut.discard(self.path)
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def jpeg(i: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def wav(i: int) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.full(1600, 0.01 * (i + 1), np.float32), 16000, format="WAV")
    return buf.getvalue()


def write_tar(path: Path, records: list[tuple[str, str, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, text, image in records:
            for name, data in ((f"{key}.txt", text.encode()), (f"{key}.jpg", image), (f"{key}.json", b"{}")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def write_parquet(path: Path, rows: list[tuple[str, bytes]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"caption": [c for c, _ in rows], "audio": [{"bytes": a, "path": f"clip{i}.wav"} for i, (_, a) in enumerate(rows)]})
    pq.write_table(table, path, row_group_size=3)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Two small corpora on a local hub: a webdataset of captioned images (2 shards of 5) and a
    parquet set of captioned sounds (2 shards of 4), and a recipe joining fake spaces fa+fb."""
    root = tmp_path / "hub"
    write_tar(root / "test/pics" / REV_T / "train/0.tar", [(f"{i:04d}", f"k{i}#pic", jpeg(i)) for i in range(5)])
    write_tar(root / "test/pics" / REV_T / "train/1.tar", [(f"{i:04d}", f"k{i}#pic", jpeg(i)) for i in range(5, 10)])
    write_parquet(root / "test/sounds" / REV_P / "data/0.parquet", [(f"k{i}#snd", wav(i)) for i in range(4)])
    write_parquet(root / "test/sounds" / REV_P / "data/1.parquet", [(f"k{i}#snd", wav(i)) for i in range(4, 8)])
    pics = recipes.Corpus(name="pics", repo="test/pics", revision=REV_T, format="webdataset", shards=("train/0.tar", "train/1.tar"),
                          fields={"text": "txt", "image": "jpg"}, bytes_per_record=1000, records=10, licence="test", paper="test")
    sounds = recipes.Corpus(name="sounds", repo="test/sounds", revision=REV_P, format="parquet", shards=("data/0.parquet", "data/1.parquet"),
                            fields={"text": "caption", "audio": "audio"}, bytes_per_record=4000, records=8, licence="test", paper="test")
    recipe = recipes.Recipe(name="test fa+fb", paper="test", a="fa", b="fb", via="text", method="c-mcr", via_corpora=("pics", "sounds"),
                            memories={"fa": {"image": ("pics",)}, "fb": {"audio": ("sounds",)}}, via_limit=6, memory_limit=4)
    monkeypatch.setitem(recipes.CORPORA, "pics", pics)
    monkeypatch.setitem(recipes.CORPORA, "sounds", sounds)
    monkeypatch.setitem(recipes.RECIPES, recipe.name, recipe)
    server = Hub(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    point_hub_at(monkeypatch, server.url)  # the shards go through the hub client, which reads its settings at import
    yield server
    server.shutdown()
    server.server_close()


def transfers(hub) -> int:
    """Requests for data files (huggingface_hub may also ask the hub's API once per process)."""
    return sum(n for path, n in hub.hits.items() if "/resolve/" in path)


def tar_hits(hub, shard: int) -> int:
    return hub.hits[f"/datasets/test/pics/resolve/{REV_T}/train/{shard}.tar"]


def test_webdataset_streams_in_order_and_the_cache_saves_a_second_transfer(hub):
    pics = recipes.CORPORA["pics"]
    texts = corpora.items(pics, "text", 7, progress=False)
    assert texts == [f"k{i}#pic" for i in range(7)]
    assert (tar_hits(hub, 0), tar_hits(hub, 1)) == (1, 1)
    before = sum(hub.hits.values())
    assert corpora.items(pics, "text", 7, progress=False) == texts
    assert corpora.items(pics, "text", 3, progress=False) == texts[:3]
    images = corpora.items(pics, "image", 7, progress=False)
    assert [np.asarray(Image.open(p))[0, 0, 0] for p in images] == [np.asarray(Image.open(io.BytesIO(jpeg(i))))[0, 0, 0] for i in range(7)]
    assert sum(hub.hits.values()) == before  # a second run reads the cache only, and the images came with the texts
    # more than the cache holds: the half-read shard is read again from where it stopped
    assert corpora.items(pics, "text", 9, progress=False) == [f"k{i}#pic" for i in range(9)]
    assert (tar_hits(hub, 0), tar_hits(hub, 1)) == (1, 2)
    # asking past the end gives what there is, once
    assert len(corpora.items(pics, "text", 50, progress=False)) == 10
    assert len(corpora.items(pics, "text", 50, progress=False)) == 10
    assert tar_hits(hub, 1) == 3


def test_a_cut_transfer_keeps_what_came_and_goes_on(hub):
    pics = recipes.CORPORA["pics"]
    hub.cut.add(f"/datasets/test/pics/resolve/{REV_T}/train/0.tar")
    with pytest.raises(DataError, match="broke off.*running the same command again goes on") as e:
        corpora.items(pics, "text", 7, progress=False)
    kept = corpora.cached(pics)
    assert 0 < kept < 5, str(e.value)
    assert corpora.items(pics, "text", 7, progress=False) == [f"k{i}#pic" for i in range(7)]  # in order, none twice
    assert (tar_hits(hub, 0), tar_hits(hub, 1)) == (2, 1)


def test_parquet_shards_give_captions_and_sound_files(hub):
    sounds = recipes.CORPORA["sounds"]
    audio = corpora.items(sounds, "audio", 5, progress=False)
    assert [Path(p).suffix for p in audio] == [".wav"] * 5
    assert [Path(p).read_bytes() for p in audio] == [wav(i) for i in range(5)]
    assert corpora.items(sounds, "text", 5, progress=False) == [f"k{i}#snd" for i in range(5)]
    assert transfers(hub) == 2


def test_connect_without_items_uses_the_recipe_with_limit(hub, fakes):
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--limit", "4", "--epochs", "1", "--no-progress"])
    assert r.exit_code == 0, r.output
    card = mcrgraph.get_mcr("fa+fb").card
    counts = {(d.space, d.modality): d.count for d in card.data}
    assert counts == {("fa", "text"): 4, ("fb", "text"): 4, ("fa", "image"): 4, ("fb", "audio"): 4}
    first = sum(hub.hits.values())
    assert first > 0
    # the same command again (overwrite): every corpus comes from the cache
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--limit", "4", "--epochs", "1", "--no-progress", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert sum(hub.hits.values()) == first
    # --items overrides the via part; the memories still come from the recipe's cache
    captions = Path(hub.root.parent / "captions.txt")
    captions.write_text("\n".join(f"k{i}#mine" for i in range(8)))
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--items", str(captions), "--epochs", "1", "--no-progress",
                                 "--overwrite"])
    assert r.exit_code == 0, r.output
    counts = {(d.space, d.modality): d.count for d in mcrgraph.get_mcr("fa+fb").card.data}
    assert counts[("fa", "text")] == 8


def test_dry_run_says_what_and_how_much_and_transfers_nothing(hub, fakes):
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--limit", "4", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert transfers(hub) == 0
    assert "pics: 2 records from test/pics@aaaaaaaaaaaa (0 cached or fetched above): about 2.0 kB" in r.output
    assert "sounds: 2 records from test/sounds@bbbbbbbbbbbb (0 cached or fetched above): about 16.0 kB" in r.output  # a whole parquet shard
    # the memories come from records the via part fetches: nothing more to download
    assert "pics: 4 records from test/pics@aaaaaaaaaaaa (2 cached or fetched above): about 2.0 kB" in r.output
    assert "in all about 36.0 kB to download" in r.output
    assert "image@fa (memory)" in r.output and "audio@fb (memory)" in r.output
    assert "default recipe: test fa+fb (as in the test paper" in r.output
    assert not (mcrgraph.store.disk.home() / "connectors" / "fa+fb").exists()
    corpora.items(recipes.CORPORA["pics"], "text", 4, progress=False)
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--limit", "2", "--dry-run"])
    assert "pics: 1 records from test/pics@aaaaaaaaaaaa, all cached (or fetched above): nothing to download" in r.output


def test_offline_with_nothing_cached_says_so(hub, fakes, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="default recipe exists for 'fa'.*HF_HUB_OFFLINE"):
        mcrgraph.connect("fa", "fb", via="text", epochs=1)
    assert transfers(hub) == 0


def test_a_missing_column_is_named(hub, monkeypatch):
    bad = recipes.CORPORA["sounds"].model_copy(update={"fields": {"text": "label"}})
    with pytest.raises(DataError, match="no column label.*caption, audio"):
        corpora.items(bad, "text", 2, progress=False)


def test_a_missing_hub_client_names_the_extra(hub, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(DataError, match=r"mcrgraph\[recipes\]"):
        corpora.items(recipes.CORPORA["pics"], "text", 2, progress=False)


def test_an_unreachable_hub_is_a_clear_error(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(DataError, match="cannot reach the hub for test/pics"):
        corpora.items(recipes.CORPORA["pics"], "text", 2, progress=False)


def test_planner_offers_the_recipe_without_fetching(hub, only_fakes):
    with pytest.raises(mcrgraph.NoPathError) as e:
        mcrgraph.graph().plan("image", "audio")
    assert e.value.steps == ["mcrgraph connect fa fb --via text"]
    assert transfers(hub) == 0


# -- the shipped recipes -----------------------------------------------------------------------


def write_clip_benchmark_shard(path: Path, records) -> None:
    """A shard as CLIP_benchmark's convert_retrieval_dataset writes it (LAION-AI/CLIP_benchmark,
    clip_benchmark/webdataset_builder.py): webdataset's writer, key "s%07d", the image under the
    source file's extension (path_to_bytes: "jpeg" written "jpg") or the --image-format (webp by
    default, lossless), and "txt": "\\n".join(caption.replace("\\n", r"\\n") for caption in captions)."""
    import webdataset

    path.parent.mkdir(parents=True, exist_ok=True)
    with webdataset.TarWriter(str(path)) as sink:
        for index, (captions, image, extension) in enumerate(records):
            sink.write({"__key__": "s%07d" % index, extension: image,
                        "txt": "\n".join(caption.replace("\n", r"\n") for caption in captions)})


def picture(i: int, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buf.getvalue()


def test_coco_shards_as_clip_benchmark_writes_them(hub, monkeypatch):
    """Five captions a record, one holding a newline; images as jpg (copied COCO files), webp
    (the builder's default) and png: each record gives its first caption and its image."""
    captions = [[f"a picture number {i}, caption {j}" for j in range(5)] for i in range(6)]
    captions[1][0] = "a caption written\nover two lines "
    formats = [("jpg", "JPEG"), ("webp", "WEBP"), ("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP"), ("jpg", "JPEG")]
    rev = "c" * 40
    write_clip_benchmark_shard(hub.root / "test/coco" / rev / "train/0.tar",
                               [(captions[i], picture(i, fmt), ext) for i, (ext, fmt) in enumerate(formats)])
    coco = recipes.CORPORA["coco-captions"].model_copy(update={"name": "coco-replica", "repo": "test/coco", "revision": rev,
                                                                "shards": ("train/0.tar",)})
    texts = corpora.items(coco, "text", 6, progress=False)
    assert texts == ["a picture number 0, caption 0", "a caption written\nover two lines"] + [c[0] for c in captions[2:]]
    images = corpora.items(coco, "image", 6, progress=False)
    assert [Path(p).suffix for p in images] == [f".{ext}" for ext, _ in formats]
    assert [np.asarray(Image.open(p).convert("RGB"))[0, 0, 0] for p in images] == [i * 20 for i in range(6)]


def test_the_size_estimates_match_the_hub_listings():
    """records x bytes_per_record against the shard sizes the hub lists (pages read for issue 28):
    huggingface.co/datasets/clip-benchmark/wds_mscoco_captions/tree/<rev>/train (13 x 1.02 GB +
    525 MB), pixparse/cc3m-wds (576 shards, 480-493 MB each; card: 2,905,954 samples),
    OpenSound/AudioCaps (412 shards of about 93 MB), agkphysics/AudioSet data/bal_train00..09."""
    listed = {"coco-captions": 13 * 1.02e9 + 525e6, "cc3m": 576 * 485e6, "audiocaps": 412 * 93e6,
              "audioset-balanced": sum([2.8, 2.79, 2.78, 2.78, 2.77, 2.8, 2.8, 2.79, 2.74, 0.969]) * 1e9}
    for name, total in listed.items():
        c = recipes.CORPORA[name]
        assert abs(c.records * c.bytes_per_record / total - 1) < 0.02, name  # the listing rounds to 3 digits, we to 2-3
    assert len(recipes.CORPORA["cc3m"].shards) == 576 and recipes.CORPORA["coco-captions"].records == 82_783


def test_every_recipe_is_pinned_and_consistent():
    sides = {}
    for r in recipes.RECIPES.values():
        assert set(r.via_corpora) <= set(recipes.CORPORA), r.name
        entries = [((s, r.via, "via"), r.via_corpora) for s in (r.a, r.b)]
        entries += [((s, m, "memory"), names) for s, mems in r.memories.items() for m, names in mems.items()]
        for key, names in entries:
            assert set(names) <= set(recipes.CORPORA), r.name
            # the hook sees one space at a time, so a side must mean the same corpora in every recipe
            assert sides.setdefault(key, names) == names, f"{key}: {sides[key]} in one recipe, {names} in {r.name}"
    for c in recipes.CORPORA.values():
        assert recipes.SHA_RE.match(c.revision)
        assert all(m in ("text", "image", "audio", "3d") for m in c.fields)
    with pytest.raises(ValueError, match="40-hex"):
        recipes.CORPORA["cc3m"].model_validate({**recipes.CORPORA["cc3m"].model_dump(), "revision": "main"})
    pairs = {(r.a, r.b, r.via, r.method) for r in recipes.RECIPES.values()}
    assert pairs == {("clip", "clap", "text", "c-mcr"), ("clip", "ulip", "image", "c-mcr"),
                     ("clip", "clap", "text", "ex-mcr"), ("clip", "ulip", "image", "ex-mcr")}


def test_the_docs_name_every_corpus():
    doc = (Path(__file__).parents[1] / "docs" / "real-encoders.md").read_text()
    for c in recipes.CORPORA.values():
        assert c.repo in doc and c.revision in doc, c.name


@pytest.mark.online
def test_a_real_recipe_corpus_streams(monkeypatch):
    """The shipped COCO corpus from the real hub: three records, then again from the cache."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    coco = recipes.CORPORA["coco-captions"]
    texts = corpora.items(coco, "text", 3, progress=False)
    images = corpora.items(coco, "image", 3, progress=False)
    assert len(texts) == 3 and all(t.strip() for t in texts)
    assert all(Image.open(p).size[0] > 0 for p in images)
    state = json.loads((corpora.folder(coco) / "state.json").read_text())
    assert state["count"] == 3 and state["revision"] == coco.revision


# -- hostile answers for corpus shards (issue 24; the rest is in test_hostile_network.py) ------
def parquet_path(shard: int) -> str:
    return f"/datasets/test/sounds/resolve/{REV_P}/data/{shard}.parquet"


def test_5_a_shard_cut_short_is_retried_and_said(hub, capsys):
    sounds = recipes.CORPORA["sounds"]
    hub.short.add(parquet_path(0))
    hub.claims[parquet_path(0)] = 10 ** 9  # and listed as a gigabyte: it goes to disk, never to memory
    with pytest.raises(DataError, match="cut short 3 times"):
        corpora.items(sounds, "text", 2, progress=True)
    assert capsys.readouterr().err.count("cut short, retrying") == 2
    assert hub.hits[parquet_path(0)] == 3
    hub.short.clear()
    hub.claims.clear()  # control: a whole shard, read from disk and deleted once used up
    assert corpora.items(sounds, "text", 5, progress=False) == [f"k{i}#snd" for i in range(5)]
    assert not (corpora.folder(sounds) / "shards" / "data" / "0.parquet").exists()


def test_5_a_tar_member_claiming_too_much_is_refused(hub, tmp_path):
    path = hub.root / "test/pics" / REV_T / "train/0.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("0000.txt")
        info.size = corpora.MAX_MEMBER + 1  # a header that claims 256 MB and more; the body is not there
        tar.addfile(info)  # (no data follows)
    with pytest.raises(DataError, match="claims .* bytes .*refused"):
        corpora.items(recipes.CORPORA["pics"], "text", 2, progress=False)


def test_8_a_name_from_the_server_cannot_choose_the_suffix(hub):
    sounds = recipes.CORPORA["sounds"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = hub.root / "test/sounds" / REV_P / "data/0.parquet"
    names = ["clip." + "x" * 300, "../../evil.wav", "clip.WAV", "noext"]
    table = pa.table({"caption": [f"k{i}#snd" for i in range(4)], "audio": [{"bytes": wav(i), "path": n} for i, n in enumerate(names)]})
    pq.write_table(table, path)
    files = corpora.items(sounds, "audio", 4, progress=False)
    assert [Path(f).suffix for f in files] == [".flac", ".wav", ".wav", ".flac"]  # the allow-list, else the default
    assert all(Path(f).parent == corpora.folder(sounds) / "audio" for f in files)
    assert corpora.suffix_of("image", "a.PNG") == ".png" and corpora.suffix_of("image", "a.exe") == ".jpg"
