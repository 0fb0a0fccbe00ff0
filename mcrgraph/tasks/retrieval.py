"""User-facing tasks over the graph of spaces: zero-shot classification (``classify``) and
retrieval (``search``). Both plan where their two modalities meet with the graph planner, so
they work inside one space or across connected ones, and raise NoPathError (listing the
connect commands that would help) when nothing compares them yet."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..spaces.encoding import embed
from ..errors import ConfigError, DataError
from ..planning.graph import MCRGraph
from ..planning.graph import graph as _build_graph
from ..planning.planner import Path, pin_for
from ..ranking.topk import topk

DEFAULT_TEMPLATES = ("a {}",)
CLIP_LOGIT_SCALE = 100.0  # CLIP's learned logit scale (exp of its temperature parameter), clamped at 100


@dataclass(frozen=True)
class Classification:
    """One item's labels, most probable first: ``ranked`` holds ``(label, probability)``
    pairs (the ``top`` best; the probabilities of all labels sum to 1)."""

    item: Any
    ranked: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        """The most probable label."""
        return self.ranked[0][0]

    @property
    def probability(self) -> float:
        """The most probable label's probability."""
        return self.ranked[0][1]


@dataclass(frozen=True)
class Hit:
    """One retrieved gallery item: its position in the gallery, the item and its cosine score."""

    index: int
    item: Any
    score: float


def classify(
    modality: str,
    items: Sequence[Any],
    labels: Sequence[str],
    templates: Sequence[str] | None = None,
    top: int | None = 5,
    path: Path | None = None,
    *,
    logit_scale: float = CLIP_LOGIT_SCALE,
    graph: MCRGraph | None = None,
    progress: bool = False,
) -> list[Classification]:
    """Zero-shot classification of ``items`` of ``modality`` (``m`` or ``m@space``) into
    ``labels``, CLIP style: each label's text is the mean of the normalised embeddings of
    every template filled with it (``"a point cloud of a {}"``; default ``["a {}"]``),
    renormalised; an item's probabilities are ``softmax(logit_scale * cosine)`` over the
    labels. Returns one Classification per item with the ``top`` labels (None: all).

    The items and the label texts meet where ``graph().plan(modality, "text")`` says (or along
    ``path``, whose target may pin the text, e.g. ``plan("audio", "text@clap")``)."""
    labels = check_labels(labels)
    templates = check_templates(templates)
    items = _as_items(items, "items")
    k = _check_top(top, len(labels))
    if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float)) or not math.isfinite(logit_scale) or logit_scale <= 0:
        raise ConfigError(f"logit_scale must be a positive number (CLIP uses {CLIP_LOGIT_SCALE:g}), got {logit_scale!r}")
    g = graph or _build_graph()
    path, source, text = g.path_for(modality, "text", path)
    prompts = [t.replace("{}", label) for label in labels for t in templates]
    ea = embed(g.mcr(path.node), pin_for(source, path.node), items, progress=progress)
    try:
        et = embed(g.mcr(path.target_node), pin_for(text, path.target_node), prompts, progress=progress)
    except DataError as e:
        raise DataError(f"cannot embed the label texts (each template filled with each label, e.g. {prompts[0]!r}): {e}; "
                        "change the labels or the templates") from e
    per_label = F.normalize(et.view(len(labels), len(templates), -1).mean(dim=1), dim=1)
    probs = torch.softmax(float(logit_scale) * (ea @ per_label.T).double(), dim=1)
    values, order = torch.sort(probs, dim=1, descending=True, stable=True)
    return [
        Classification(item, tuple((labels[int(j)], float(p)) for p, j in zip(values[i, :k], order[i, :k])))
        for i, item in enumerate(items)
    ]


def search(
    query_modality: str,
    queries: Sequence[Any],
    gallery_modality: str,
    gallery: Sequence[Any],
    top: int | None = 10,
    path: Path | None = None,
    *,
    graph: MCRGraph | None = None,
    progress: bool = False,
    index: str = "exact",
    rerank: int | None = None,
) -> list[list[Hit]]:
    """For each query, the ``top`` gallery items (None: all) by cosine similarity, best first
    (ties keep gallery order). Exact, and in chunks of the gallery (``mcrgraph.ranking.topk``), so no
    queries x gallery matrix is built. The modalities meet where ``graph().plan(query_modality,
    gallery_modality)`` says, or along ``path``. Embeddings go through ``embed``, so a gallery
    searched again is read from the embedding cache, not encoded again. ``index``: another
    ``mcrgraph.ranking.index.GalleryIndex`` kind (``fp16``, ``faiss-ivf``, ...), approximate; with
    ``rerank=R`` its first R candidates per query are scored exactly (``GalleryIndex``)."""
    queries = _as_items(queries, "queries")
    gallery = _as_items(gallery, "gallery")
    k = _check_top(top, len(gallery))
    g = graph or _build_graph()
    path, qm, gm = g.path_for(query_modality, gallery_modality, path)
    # what g.similarity computes, without the queries x gallery matrix: exact chunked top-k
    eq = embed(g.mcr(path.node), pin_for(qm, path.node), queries, progress=progress)
    eg = embed(g.mcr(path.target_node), pin_for(gm, path.target_node), gallery, progress=progress)
    if index == "exact" and rerank is None:  # straight to topk: a GalleryIndex would check every value once more
        values, order = topk(eq, eg, k)
    else:
        from ..ranking.index import GalleryIndex

        values, order = GalleryIndex(eg, index, rerank=rerank).search(eq, k)
    return [  # an approximate index may return fewer than k rows (index -1)
        [Hit(int(j), gallery[int(j)], float(s)) for s, j in zip(values[i], order[i]) if int(j) >= 0]
        for i in range(len(queries))
    ]


def check_labels(labels: Sequence[str]) -> list[str]:
    """Labels as a list of stripped, non-blank, distinct strings (at least two); DataError otherwise."""
    if isinstance(labels, (str, bytes)):
        raise DataError(f"labels must be a list of strings, got a single {type(labels).__name__}; wrap it: [{labels!r}]")
    if labels is None:
        raise DataError("no labels given; give at least two, e.g. ['chair', 'table']")
    out: list[str] = []
    first: dict[str, int] = {}
    for n, label in enumerate(labels, 1):
        if not isinstance(label, str):
            raise DataError(f"label {n} is a {type(label).__name__} ({label!r}); labels are strings")
        label = label.strip()
        if not label:
            raise DataError(f"label {n} is blank; every label needs some text")
        if label in first:
            raise DataError(f"label {label!r} is given twice (labels {first[label]} and {n}); give each label once")
        first[label] = n
        out.append(label)
    if len(out) < 2:
        got = "none" if not out else f"only {out[0]!r}"
        raise DataError(f"classification needs at least two labels (with one, its probability is always 1); got {got}")
    return out


def check_templates(templates: Sequence[str] | None) -> list[str]:
    """Templates as a list, each holding ``{}`` exactly once; ConfigError otherwise."""
    if templates is None:
        return list(DEFAULT_TEMPLATES)
    if isinstance(templates, (str, bytes)):
        raise ConfigError(f"templates must be a list of strings, got a single {type(templates).__name__}; wrap it: [{templates!r}]")
    templates = list(templates)
    if not templates:
        raise ConfigError("no templates given; give at least one, e.g. ['a photo of a {}'], or None for the default ['a {}']")
    for t in templates:
        if not isinstance(t, str) or t.count("{}") != 1:
            found = "it is not a string" if not isinstance(t, str) else f"it has {t.count('{}')}"
            raise ConfigError(f"template {t!r} must contain {{}} exactly once, where the label goes ({found}); e.g. 'a point cloud of a {{}}'")
    return templates


def read_labels(path: str | FilePath) -> list[str]:
    """A labels file: one label per line, UTF-8. Blank lines (other than at the end) and
    repeated labels are refused with the line number; surrounding spaces are stripped."""
    p = FilePath(path).expanduser()
    if p.is_dir():
        raise DataError(f"labels file {str(path)!r} is a folder; give a text file with one label per line")
    if not p.exists():
        raise DataError(f"labels file {str(path)!r} does not exist")
    try:
        data = p.read_bytes()
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except OSError as e:
        raise DataError(f"cannot read labels file {path}: {e.strerror}") from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # trailing blank lines are invisible and harmless
    first: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        label = line.strip()
        if not label:
            raise DataError(f"{path}: line {n} is blank; give one label per line, with no blank lines")
        if label in first:
            raise DataError(f"{path}: line {n} repeats {label!r} from line {first[label]}; give each label once")
        first[label] = n
    if not first:
        raise DataError(f"labels file {path} has no labels (it is empty or blank); give one label per line")
    return list(first)


def _as_items(items: Sequence[Any], what: str) -> list[Any]:
    if isinstance(items, (str, bytes)):
        raise DataError(f"{what} must be a list, got a single {type(items).__name__}; wrap it: [{items[:40]!r}]")
    if items is None:
        raise DataError(f"no {what} given")
    items = list(items)
    if not items:
        raise DataError(f"no {what} given (the list is empty)")
    return items


def _check_top(top: int | None, n: int) -> int:
    if top is None:
        return n
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be a whole number >= 1 (or None for all), got {top!r}")
    return min(top, n)
