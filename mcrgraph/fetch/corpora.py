"""Fetching a recipe's corpora (recipes.py) from the Hugging Face hub, shard by shard, into a
cache that later runs reuse with no transfer.

Webdataset shards are streamed (a tar read as it arrives, stopped once enough records are in);
parquet shards are downloaded whole (parquet needs its footer) and read in row groups. Records
go to ``$MCRGRAPH_HOME/corpora/<name>/<revision[:12]>/``: ``records.json`` (text, or file names
of the media written beside it) and ``state.json`` (where the next record comes from), both
written atomically after every shard, so a cut run keeps what it finished and goes on from there.
The hub is reached through huggingface_hub's address scheme; ``HF_ENDPOINT`` points elsewhere
(the tests serve a repository from 127.0.0.1). ``HF_HUB_OFFLINE=1`` stops any transfer."""
from __future__ import annotations

import contextlib
import contextvars
import http.client
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import DataError
from ..io.progress import progress_bar
from .recipes import CORPORA, Corpus, corpora_for
from ..store.disk import atomic_write_bytes, home
from ..version import __version__

EXTRA = "pip install 'mcrgraph[recipes]'"
MEDIA = {"image": ".jpg", "audio": ".flac", "3d": ".npy"}
_options: contextvars.ContextVar[dict] = contextvars.ContextVar("corpora_options", default={})


@contextlib.contextmanager
def options(limit: int | None = None, progress: bool = True):
    """How many items a default-items request takes (``--limit``) and whether bars show, for
    the code inside the block (the CLI sets it around a connect)."""
    token = _options.set({"limit": limit, "progress": progress})
    try:
        yield
    finally:
        _options.reset(token)


def current_limit(default: int) -> int:
    return _options.get().get("limit") or default


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def folder(corpus: Corpus) -> Path:
    return home() / "corpora" / corpus.name / corpus.revision[:12]


@dataclass
class State:
    records: list[dict[str, str]]
    shard: int = 0        # the shard the next record comes from
    offset: int = 0       # records of that shard already taken
    exhausted: bool = False


def load(corpus: Corpus) -> State:
    d = folder(corpus)
    try:
        state = json.loads((d / "state.json").read_text())
        records = json.loads((d / "records.json").read_text())
    except (OSError, ValueError):
        return State([])
    if len(records) != state.get("count"):  # written in one order: records first, then state
        records = records[: state.get("count", 0)]
    return State(records, state.get("shard", 0), state.get("offset", 0), state.get("exhausted", False))


def _save(corpus: Corpus, st: State) -> None:
    d = folder(corpus)
    atomic_write_bytes(d / "records.json", json.dumps(st.records).encode())
    atomic_write_bytes(d / "state.json", json.dumps({"count": len(st.records), "shard": st.shard, "offset": st.offset,
                                                      "exhausted": st.exhausted, "repo": corpus.repo, "revision": corpus.revision}).encode())


def cached(corpus: Corpus) -> int:
    """How many records of ``corpus`` the cache holds."""
    return len(load(corpus).records)


def items(corpus: Corpus, modality: str, n: int, progress: bool = True) -> list[str]:
    """The first ``n`` items of ``modality`` from ``corpus`` (texts, or paths of media files),
    fetching only what the cache lacks. Fewer when the corpus holds fewer."""
    if modality not in corpus.fields:
        raise DataError(f"corpus {corpus.name} has no {modality} (it has {', '.join(corpus.fields)})")
    st = load(corpus)
    if len(st.records) < n and not st.exhausted:
        st = _fetch(corpus, st, n, progress)
    d = folder(corpus)
    out = []
    for rec in st.records[:n]:
        value = rec.get(modality)
        if value is None:
            continue
        out.append(value if modality == "text" else str(d / value))
    return out


def _fetch(corpus: Corpus, st: State, n: int, progress: bool) -> State:
    if offline():
        raise DataError(f"corpus {corpus.name} ({corpus.repo}) has {len(st.records)} of the {n} records asked for cached, and "
                        "HF_HUB_OFFLINE is set; go online once (the cache keeps them), take --limit "
                        f"{len(st.records)}, or give your own items (--items FILE, --memory MOD=FILE)")
    d = folder(corpus)
    d.mkdir(parents=True, exist_ok=True)
    with progress_bar(n, f"{corpus.name} records", "rec", enabled=progress) as bar:
        bar.update(len(st.records))
        while len(st.records) < n and st.shard < len(corpus.shards):
            try:
                for rec in _records(corpus, corpus.shards[st.shard], skip=st.offset, progress=progress):
                    st.records.append(_store(d, corpus, len(st.records), rec))
                    st.offset += 1
                    bar.update(1)
                    if len(st.records) >= n:
                        break
                else:  # the shard is used up
                    st.shard, st.offset = st.shard + 1, 0
            except (OSError, EOFError, tarfile.TarError, http.client.HTTPException) as e:  # a cut transfer: keep what came whole
                _save(corpus, st)
                raise DataError(f"{corpus.repo}: the transfer of {corpus.shards[st.shard]} broke off ({type(e).__name__}: {e}); the "
                                f"{len(st.records):,} records fetched are kept, and running the same command again goes on from there") from None
            _save(corpus, st)
        st.exhausted = st.shard >= len(corpus.shards)
        _save(corpus, st)
    return st


def _store(d: Path, corpus: Corpus, index: int, rec: dict[str, Any]) -> dict[str, str]:
    """Text stays in the record; media bytes go to a file named by the record's index."""
    out = {}
    for modality, value in rec.items():
        if modality == "text":
            out["text"] = value
        else:
            data, suffix = value
            name = f"{modality}/{index:07d}{suffix}"
            atomic_write_bytes(d / name, data)
            out[modality] = name
    return out


def _url(corpus: Corpus, filename: str) -> tuple[str, dict]:
    try:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers
    except ImportError:
        raise DataError(f"fetching the default corpora needs huggingface_hub: {EXTRA}") from None
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now, not at import, so it can be set late
    url = hf_hub_url(corpus.repo, filename, repo_type="dataset", revision=corpus.revision, endpoint=endpoint)
    return url, build_hf_headers(library_name="mcrgraph", library_version=__version__)


@contextlib.contextmanager
def _open(corpus: Corpus, filename: str):
    url, headers = _url(corpus, filename)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as r:
            yield r
    except urllib.error.HTTPError as e:
        hint = " (a gated dataset: accept its terms on the hub and log in with `hf auth login`)" if e.code in (401, 403) else ""
        raise DataError(f"{corpus.repo}@{corpus.revision[:12]}: {filename}: HTTP {e.code} {e.reason}{hint}") from None
    except urllib.error.URLError as e:
        raise DataError(f"cannot reach the hub for {corpus.repo} ({url}): {e.reason}; check the network, or give your own items "
                        "(--items FILE, --memory MOD=FILE)") from None


def _records(corpus: Corpus, filename: str, skip: int, progress: bool) -> Iterator[dict[str, Any]]:
    reader = _tar_records if corpus.format == "webdataset" else _parquet_records
    for i, rec in enumerate(reader(corpus, filename, progress)):
        if i >= skip:
            yield rec


def _tar_records(corpus: Corpus, filename: str, progress: bool) -> Iterator[dict[str, Any]]:
    """A webdataset tar, streamed: members grouped by key (the name up to its first dot). A
    field may name alternatives as webdataset's ``to_tuple`` takes them (``webp;png;jpg;jpeg``):
    the first member of a record with any of them is used."""
    wanted = {ext: m for m, exts in corpus.fields.items() for ext in exts.lower().split(";")}
    with _open(corpus, filename) as r:
        key, rec = None, {}
        tar = tarfile.open(fileobj=r, mode="r|*")
        for member in tar:
            if not member.isfile():
                continue
            base = member.name.rsplit("/", 1)[-1]
            k, _, ext = base.partition(".")
            if k != key:
                if _complete(rec, corpus):
                    yield rec
                key, rec = k, {}
            modality = wanted.get(ext.lower())
            if modality is None or modality in rec:
                continue
            data = tar.extractfile(member).read()
            rec[modality] = first_caption(data.decode("utf-8")) if modality == "text" else (data, "." + ext.lower())
        if _complete(rec, corpus):
            yield rec


def first_caption(txt: str) -> str:
    """The caption that stands for a record whose ``.txt`` holds several, one a line, as
    CLIP_benchmark's retrieval builder writes them (``"\\n".join(captions)``, a newline inside a
    caption escaped as the two characters ``\\n``): the first non-empty one, unescaped. A
    one-caption ``.txt`` (CC3M) is itself. Why the first and not each: docs/real-encoders.md."""
    for line in txt.split("\n"):
        caption = line.replace("\\n", "\n").strip()
        if caption:
            return caption
    return ""


def _complete(rec: dict, corpus: Corpus) -> bool:
    return bool(rec) and all(rec.get(m) not in (None, "") for m in corpus.fields)  # a record with no caption is skipped


def _parquet_records(corpus: Corpus, filename: str, progress: bool) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"reading parquet corpora needs pyarrow: {EXTRA}") from None
    buf = io.BytesIO()
    with _open(corpus, filename) as r:
        total = int(r.headers.get("Content-Length") or 0) or None
        with progress_bar(total, filename.rsplit("/", 1)[-1], "B", enabled=progress) as bar:
            while chunk := r.read(1 << 20):
                buf.write(chunk)
                bar.update(len(chunk))
    table = pq.ParquetFile(buf)
    columns = corpus.fields
    missing = [c for c in columns.values() if c not in table.schema_arrow.names]
    if missing:
        raise DataError(f"{corpus.repo}: {filename} has no column {', '.join(missing)} (it has {', '.join(table.schema_arrow.names)})")
    for batch in table.iter_batches(columns=list(dict.fromkeys(columns.values())), batch_size=256):
        rows = batch.to_pylist()
        for row in rows:
            rec = {}
            for modality, col in columns.items():
                value = row[col]
                if modality == "text":
                    rec["text"] = str(value).strip()
                else:  # the hub's Audio/Image feature: {"bytes": ..., "path": ...}
                    data = value.get("bytes") if isinstance(value, dict) else value
                    path = (value.get("path") or "") if isinstance(value, dict) else ""
                    suffix = os.path.splitext(path)[1].lower() or MEDIA.get(modality, "")
                    rec[modality] = (data, suffix)
            if all(v not in (None, "") and (not isinstance(v, tuple) or v[0]) for v in rec.values()):
                yield rec


def split(n: int, parts: int) -> list[int]:
    """``n`` items over ``parts`` corpora: as equal as can be, the first ones taking the rest."""
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def gather(names: Sequence[str], modality: str, n: int, progress: bool = True) -> list[str]:
    """``n`` items of ``modality`` drawn evenly from the named corpora, in order."""
    out: list[str] = []
    for name, k in zip(names, split(n, len(names))):
        out += items(CORPORA[name], modality, k, progress=progress)
    return out


@dataclass(frozen=True)
class Estimate:
    corpus: Corpus
    records: int      # records asked for
    cached: int       # of which the cache holds (or an earlier part of the same run fetches)
    bytes: int        # about how much must be transferred for the rest

    def line(self) -> str:
        c = self.corpus
        need = max(self.records - self.cached, 0)
        where = f"{c.repo}@{c.revision[:12]}"
        if not need:
            return f"{c.name}: {self.records:,} records from {where}, all cached (or fetched above): nothing to download"
        return (f"{c.name}: {self.records:,} records from {where} ({self.cached:,} cached or fetched above): about {human(self.bytes)} "
                f"({c.format}, {c.licence})")


def estimate(names: Sequence[str], n: int, planned: dict[str, int] | None = None) -> list[Estimate]:
    """What ``gather(names, ..., n)`` would transfer. Webdataset shards stop mid-shard; a parquet
    shard is fetched whole, so its estimate rounds up to whole shards. ``planned`` (corpus ->
    records) counts records an earlier part of the same run fetches as cached, and is updated."""
    out = []
    for name, k in zip(names, split(n, len(names))):
        c = CORPORA[name]
        have = max(cached(c), (planned or {}).get(name, 0))
        if planned is not None:
            planned[name] = max(have, k)
        need = max(k - have, 0)
        size = need * c.bytes_per_record
        if c.format == "parquet" and need:
            per_shard = max(c.records // len(c.shards), 1)
            size = -(-need // per_shard) * c.shard_bytes()
        out.append(Estimate(c, k, min(have, k), size))
    return out


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


# -- the default_items hook's answer for the papers' spaces (default_plugins/recipes.py) -----


def leaf_space(mcr: Any, modality: str) -> str:
    """The plugin space that encodes ``modality`` for ``mcr``: itself, or for a connected space
    the first space of its route."""
    route = getattr(mcr, "route", None)
    if route is None:
        return mcr.name
    try:
        return route(modality)[0]
    except Exception:  # noqa: BLE001 - a connected space whose parents are missing offers nothing
        return ""


class RecipeItems(Sequence):
    """Items a recipe offers, fetched on first use: saying *that* there are defaults (the
    planner asks) costs nothing; reading them (connect) streams what the cache lacks."""

    def __init__(self, names: Sequence[str], modality: str, n: int, progress: bool):
        self.names, self.modality, self.n, self.progress = tuple(names), modality, n, progress
        self._items: list[str] | None = None

    def _get(self) -> list[str]:
        if self._items is None:
            self._items = gather(self.names, self.modality, self.n, progress=self.progress)
        return self._items

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, i):
        return self._get()[i]

    def __iter__(self):
        return iter(self._get())

    def __repr__(self) -> str:
        return f"RecipeItems({'+'.join(self.names)}, {self.modality}, {self.n})"


def offer(mcr: Any, modality: str, role: str) -> RecipeItems | None:
    """A recipe's items of ``modality`` for ``mcr`` in ``role``; None when no recipe names
    any, or when offline (HF_HUB_OFFLINE) with fewer cached than would be asked for."""
    found = corpora_for(leaf_space(mcr, modality), modality, role)
    if found is None:
        return None
    recipe, names = found
    n = current_limit(recipe.limit(role))
    if offline() and any(e.cached < e.records for e in estimate(names, n)):
        return None
    return RecipeItems(names, modality, n, _options.get().get("progress", True))


def fetch_plan(a: Any, b: Any, via: str, limit: int | None = None) -> list[tuple[str, list[Estimate]]]:
    """What ``connect(a, b, via)`` with no items would fetch: ``[(what, estimates)]`` for the
    via items and each side's memory (both sides or neither, as connect takes them)."""
    def lookup(space, modality, role):
        found = corpora_for(leaf_space(space, modality), modality, role)
        if found is None:
            return None
        recipe, names = found
        return names, limit or recipe.limit(role), planned

    planned: dict[str, int] = {}  # records of a corpus that an earlier role of this run fetches (texts bring their images)
    plan = []
    via_src = lookup(a, via, "via") or lookup(b, via, "via")
    if via_src is None:
        return []
    plan.append((f"{via} (via items)", estimate(*via_src)))
    mems = []
    for space in (a, b):
        for m in space.modalities:
            src = lookup(space, m, "memory") if m != via else None
            if src is not None:
                mems.append((f"{m}@{space.name} (memory)", estimate(*src)))
                break
    return plan + (mems if len(mems) == 2 else [])


def why_no_defaults(a: Any, b: Any, via: str) -> str:
    """A note for connect's "no defaults" error when a recipe exists but is held back offline."""
    for space in (a, b):
        if corpora_for(leaf_space(space, via), via, "via") is not None and offline():
            return (f" (a default recipe exists for {space.name!r}, but HF_HUB_OFFLINE is set and its corpora are not cached: "
                    "go online once, or give --items)")
    return ""
