"""What every benchmark loader shares: checked paths, CSV/line readers whose errors name the file
and line, finding a clip's media file, choosing where two modalities meet (``Scorer``), and
retrieval tables with a chance row."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from ..errors import ConfigError, DataError
from ..spaces.mcr import split_pin
from ..ranking.metrics import chance, retrieval

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
DOCS = "docs/datasets.md"


def hint(name: str) -> str:
    return f"see {DOCS}#{name} for the layout and where to get it"


def root_dir(root: str | Path | None, name: str, holds: str) -> Path:
    """The dataset's folder, which must exist; ``holds`` says what it should contain."""
    if root is None or not str(root).strip():
        raise ConfigError(f"{name}: give the dataset folder with --root (the folder holding {holds}; {hint(name.lower())})")
    p = Path(root).expanduser()
    if not p.exists():
        raise DataError(f"{name}: root {str(root)!r} does not exist; give the folder holding {holds} ({hint(name.lower())})")
    if not p.is_dir():
        raise DataError(f"{name}: root {str(root)!r} is a file; give the folder holding {holds} ({hint(name.lower())})")
    return p


def split_file(root: Path, names: Sequence[str], dataset: str, what: str) -> Path:
    """The first of ``names`` (relative to ``root``) that exists; DataError naming them all."""
    for n in names:
        if (root / n).is_file():
            return root / n
    tried = " or ".join(repr(n) for n in names)
    raise DataError(f"{dataset}: {what} {tried} is missing from {root} ({hint(dataset.lower())})")


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte {e.start}); is this the right file?") from None


def read_json(path: Path, fix: str = "") -> Any:
    """A JSON file, or a DataError naming the line that is broken (and ``fix``, how to mend it)."""
    import json

    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno} is not valid JSON ({e.msg}){'; ' + fix if fix else ''}") from None


def read_csv(path: Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file with a header naming at least ``columns``, as (line number, row).
    A missing column, a row with too few or too many fields or a blank required field is a
    DataError naming the file and line."""
    text = read_text(path)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path} is empty; expected a header with {', '.join(columns)}") from None
    header = [h.strip() for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: line 1 (the header) lacks the column(s) {', '.join(missing)}; it has {', '.join(header) or 'none'}")
    rows = []
    try:
        for fields in reader:
            n = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataError(f"{path}: line {n} has {len(fields)} fields, the header has {len(header)}; "
                                "is a caption's comma unquoted?")
            row = dict(zip(header, (f.strip() for f in fields)))
            blank = [c for c in columns if not row[c]]
            if blank:
                raise DataError(f"{path}: line {n} has no {blank[0]}")
            rows.append((n, row))
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num} is not valid CSV ({e})") from None
    return rows


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank, stripped lines of a text file with their line numbers."""
    return [(n, line.strip()) for n, line in enumerate(read_text(path).splitlines(), 1) if line.strip()]


def find_media(folders: Iterable[Path], stems: Iterable[str], exts: Sequence[str]) -> Path | None:
    """The first ``folder/stem`` (as given, or with one of ``exts``) that is a file."""
    for folder in folders:
        for stem in stems:
            if not stem:
                continue
            if Path(stem).suffix.lower() in exts and (folder / stem).is_file():
                return folder / stem
            for ext in exts:
                if (folder / f"{stem}{ext}").is_file():
                    return folder / f"{stem}{ext}"
    return None


def check_limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a whole number >= 1, got {limit!r}")
    return limit


def not_empty(items: Sequence[Any], dataset: str, where: Path, what: str) -> None:
    if not items:
        raise DataError(f"{dataset}: the test split in {where} has no {what}; {hint(dataset.lower())}")


@dataclass
class Scorer:
    """Where two modalities meet: ``space`` (every comparison inside that one space), else
    ``pins`` (modality -> ``m@space`` given by ``--path FROM TO``), else the graph planner's
    choice. ``paths`` records each path used, for the report."""

    space: str | None = None
    pins: dict[str, str] = field(default_factory=dict)
    progress: bool = False
    paths: dict[str, str] = field(default_factory=dict)
    _graph: Any = None

    @classmethod
    def make(cls, space: str | None = None, path: Sequence[str] | None = None, progress: bool = False) -> "Scorer":
        if space and path:
            raise ConfigError("give either --space or --path, not both")
        pins = {}
        for spec in path or ():
            base, _ = split_pin(spec)
            if base in pins:
                raise ConfigError(f"--path names {base} twice ({pins[base]} and {spec}); give FROM and TO of two modalities")
            pins[base] = spec
        return cls(space=space, pins=pins, progress=progress)

    @property
    def graph(self):
        if self._graph is None:
            from ..planning.graph import graph

            self._graph = graph()
        return self._graph

    def plan(self, a: str, b: str):
        """The Path comparing base modalities ``a`` and ``b``."""
        if self.space:
            space = self.graph.mcr(self.space) if self.space in self.graph.nx else None
            if space is None:
                from ..spaces.registry import get_mcr

                get_mcr(self.space)  # raises UnknownMCRError listing the known spaces
                raise DataError(f"space {self.space!r} is not usable (a connector whose parent spaces are missing?); see mcrgraph graph")
            lacking = [m for m in (a, b) if m not in space.modalities]
            if lacking:
                raise ConfigError(f"space {self.space!r} has no {' or '.join(lacking)} (it has {', '.join(space.modalities)}); "
                                  f"this benchmark compares {a} and {b}: give a space holding both, or leave out --space")
            name = self.space
            path = self.graph.plan(a, b, weight=lambda n, attrs: 0.0 if n == name else None)
        else:
            if self.pins and set(self.pins) != {a, b}:
                raise ConfigError(f"--path {' '.join(self.pins.values())} compares {' and '.join(self.pins)}; "
                                  f"this benchmark compares {a} and {b} (e.g. --path {a}@SPACE {b}@SPACE)")
            path = self.graph.plan(self.pins.get(a, a), self.pins.get(b, b))
        self.paths[f"{a}<->{b}"] = path.describe()
        return path

    def similarity(self, a: str, items_a: Sequence[Any], b: str, items_b: Sequence[Any]) -> torch.Tensor:
        """Cosines (len(items_a), len(items_b))."""
        path = self.plan(a, b)
        return self.graph.similarity(path.source, list(items_a), path.target, list(items_b), path=path, progress=self.progress)


def retrieval_rows(sim: torch.Tensor, q_labels, g_labels, ks=(1, 5, 10)) -> dict[str, dict[str, float]]:
    """A chance row and a result row: R@k and mAP (relevant: same label), queries, gallery."""
    m = retrieval(sim, q_labels, g_labels, ks=ks)
    c = chance(q_labels, g_labels, ks=ks)
    counts = {"queries": int(m.pop("queries")), "gallery": len(g_labels)}
    ch = {f"R@{k}": c[f"r{k}"] for k in ks}
    row = {f"R@{k}": m[f"r{k}"] for k in ks} | {"mAP": m["map"]}
    return {"chance": ch | counts, "result": row | counts}


def cross_modal_tables(name: str, a: str, b: str, sim: torch.Tensor, a_labels, b_labels, ks=(1, 5, 10)) -> dict[str, dict]:
    """Both directions of a retrieval benchmark from one (len(a), len(b)) similarity matrix."""
    return {
        f"{name}: {a}->{b} retrieval": retrieval_rows(sim, a_labels, b_labels, ks),
        f"{name}: {b}->{a} retrieval": retrieval_rows(sim.T, b_labels, a_labels, ks),
    }


@dataclass
class Report:
    """What an eval prints and writes: tables ``{title: {row: {column: value}}}`` and facts
    about the run (counts, skipped items, paths)."""

    dataset: str
    tables: dict[str, dict[str, dict[str, Any]]]
    info: dict[str, Any] = field(default_factory=dict)
