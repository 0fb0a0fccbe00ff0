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
import json
import os
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import DataError, DownloadError, MCRGraphError
from ..io.progress import progress_bar
from .recipes import CORPORA, Corpus, corpora_for
from ..store.disk import atomic_write_bytes, home

EXTRA = "pip install 'mcrgraph[recipes]'"
MEDIA = {"image": ".jpg", "audio": ".flac", "3d": ".npy"}
# the suffixes a stored media file may take: names come from the server, so anything else (a
# 300-character "extension", a path) falls back to the modality's default
SUFFIXES = {"image": (".jpg", ".jpeg", ".png", ".webp"), "audio": (".flac", ".wav", ".mp3", ".ogg"),
            "3d": (".npy", ".ply", ".obj")}
MAX_MEMBER = 256 << 20  # bytes of one tar member read into memory; a header claiming more is refused
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
            except (OSError, EOFError, tarfile.TarError, http.client.HTTPException, DownloadError) as e:  # a cut transfer: keep what came whole
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


def _hub_file(corpus: Corpus, filename: str):
    from .hub import HubFile

    return HubFile(corpus.repo, filename, revision=corpus.revision, repo_type="dataset",
                   what=f"{corpus.repo}@{corpus.revision[:12]}: {filename}")


def _hub_error(corpus: Corpus, filename: str, e: BaseException) -> DataError:
    """One line for a shard the hub would not give: its HTTP status, a bound it broke, or no answer."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    if status is not None:
        hint = " (a gated dataset: accept its terms on the hub and log in with `hf auth login`)" if status in (401, 403) else ""
        return DataError(f"{corpus.repo}@{corpus.revision[:12]}: {filename}: HTTP {status}{hint}")
    if isinstance(e, MCRGraphError):
        return DataError(str(e))
    return DataError(f"cannot reach the hub for {corpus.repo} ({_hub_file(corpus, filename).url()}): {type(e).__name__}: "
                     f"{str(e).splitlines()[0][:160] if str(e) else ''}; check the network, or give your own items "
                     "(--items FILE, --memory MOD=FILE)")


def _needs_hub() -> None:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        raise DataError(f"fetching the default corpora needs huggingface_hub: {EXTRA}") from None


@contextlib.contextmanager
def _open(corpus: Corpus, filename: str):
    """A shard read as it arrives, through the hub client's session (its token stays on the hub's
    origin), bounded by the listed size and the minimum rate (hub.stream)."""
    from . import hub

    _needs_hub()
    with contextlib.ExitStack() as stack:
        try:
            r = stack.enter_context(hub.stream(_hub_file(corpus, filename)))
        except Exception as e:  # hub statuses, connection errors, bounds: many types
            raise _hub_error(corpus, filename, e) from None
        yield r


SHARD_ATTEMPTS = 3


def _shard_on_disk(corpus: Corpus, filename: str, progress: bool) -> Path:
    """A parquet shard (read whole: its footer is at the end) on disk beside the corpus, through
    hf_hub_download with the bounds and checks of hub.fetch; a cut transfer is tried again."""
    from . import hub

    _needs_hub()
    f = _hub_file(corpus, filename)
    for attempt in range(SHARD_ATTEMPTS):
        try:
            return hub.fetch(f, local_dir=folder(corpus) / "shards", progress=progress)
        except hub.CutShort as e:
            if attempt + 1 == SHARD_ATTEMPTS:
                raise DataError(f"{f.label()}: cut short {SHARD_ATTEMPTS} times ({e}); the records fetched are kept, "
                                "run the same command again to go on") from None
            if progress:
                sys.stderr.write(f"{f.label()}: cut short, retrying\n")
        except Exception as e:
            raise _hub_error(corpus, filename, e) from None
    raise AssertionError("unreachable")  # pragma: no cover


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
            data = member_bytes(tar, member, filename)
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
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"reading parquet corpora needs pyarrow: {EXTRA}") from None
    path = _shard_on_disk(corpus, filename, progress)
    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        path.unlink(missing_ok=True)
        raise DataError(f"{corpus.repo}: {filename} is not a readable parquet file ({type(e).__name__}: {str(e)[:120]}); it was "
                        "deleted and the next run fetches it again") from None
    columns = corpus.fields
    missing = [c for c in columns.values() if c not in table.schema_arrow.names]
    if missing:
        raise DataError(f"{corpus.repo}: {filename} has no column {', '.join(missing)} (it has {', '.join(table.schema_arrow.names)})")
    batches = table.iter_batches(columns=list(dict.fromkeys(columns.values())), batch_size=256)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as e:
            path.unlink(missing_ok=True)
            raise DataError(f"{corpus.repo}: {filename} breaks off inside ({type(e).__name__}: {str(e)[:120]}); it was deleted and "
                            "the next run fetches it again") from None
        if batch is None:
            path.unlink(missing_ok=True)  # used up: its records are in the corpus cache now
            return
        for row in batch.to_pylist():
            rec = {}
            for modality, col in columns.items():
                value = row[col]
                if modality == "text":
                    rec["text"] = str(value).strip()
                else:  # the hub's Audio/Image feature: {"bytes": ..., "path": ...}
                    data = value.get("bytes") if isinstance(value, dict) else value
                    name = (value.get("path") or "") if isinstance(value, dict) else ""
                    rec[modality] = (data, suffix_of(modality, name))
            if all(v not in (None, "") and (not isinstance(v, tuple) or v[0]) for v in rec.values()):
                yield rec


def suffix_of(modality: str, name: str) -> str:
    """The file suffix for a media item named ``name`` by the server: its own when it is one of
    the formats read for ``modality``, else the modality's default."""
    ext = os.path.splitext(name or "")[1].lower()
    return ext if ext in SUFFIXES.get(modality, ()) else MEDIA.get(modality, "")


def member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo, filename: str) -> bytes:
    """A tar member's bytes, refused when its header claims more than MAX_MEMBER."""
    if member.size > MAX_MEMBER:
        raise DataError(f"{filename}: member {member.name[:80]!r} claims {member.size:,} bytes (limit {MAX_MEMBER:,}); refused")
    return tar.extractfile(member).read(member.size)


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
