"""Localization heat maps: where in an image a query (a sound, a caption, a point cloud) is.

Spaces that can return dense (patch-level) features say so with ``MCR.dense_modalities()``
and implement ``MCR.encode_dense`` (mini-clip and mini-ulip do for images; a connected space
does when the parent that encodes the image does, by passing each patch through its head).
``localize`` plans where the query and the image meet, as ``search`` does, and returns the
cosine of the query's embedding with each patch embedding: the C-MCR paper's audio-to-patch
maps, computed with CLIP's patch tokens through the connector."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .connected import ConnectedMCR
from .encoding import check_embeddings, embed
from .errors import ConfigError, DataError, EncoderError, EncoderOutputError, MCRGraphError, NoPathError
from .graph import MCRGraph
from .graph import graph as _build_graph
from .mcr import MCR, check_modality, split_pin
from .planner import Path, pin_for


@dataclass(frozen=True)
class Heatmap:
    """A query's cosine similarity with every patch of one image.

    ``scores`` is a float32 (H, W) tensor (row 0 is the top of the image); ``score`` the
    cosine with the whole image's embedding; ``space`` the space whose patch embeddings were
    used (``path.target_node``)."""

    scores: torch.Tensor
    query: Any
    image: Any
    query_modality: str
    image_modality: str
    space: str
    path: Path
    score: float

    @property
    def peak(self) -> tuple[int, int, float]:
        """``(row, column, score)`` of the best patch (the first one on ties)."""
        i = int(torch.argmax(self.scores))
        w = self.scores.shape[1]
        return i // w, i % w, float(self.scores.view(-1)[i])

    def upsampled(self, height: int, width: int) -> torch.Tensor:
        """The map resized bilinearly to (height, width), e.g. the image's size, for drawing."""
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (height, width)):
            raise ConfigError(f"height and width must be whole numbers >= 1, got {height!r} and {width!r}")
        return F.interpolate(self.scores[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]


def localize(
    query_modality: str,
    query_item: Any,
    image_item: Any,
    path: Path | None = None,
    image_modality: str = "image",
    *,
    graph: MCRGraph | None = None,
) -> Heatmap:
    """The heat map of ``query_item`` (of ``query_modality``, ``m`` or ``m@space``) over
    ``image_item``: its cosine with each patch embedding of the image.

    The two meet where ``graph().plan(query_modality, image_modality)`` says, or along
    ``path``. When the planned space cannot give patch embeddings of the image but another
    can, the cheapest path through a space that can is taken instead. Raises NoPathError when
    no space compares the two, ConfigError when none that does has dense features (naming the
    spaces that have them)."""
    for what, item in (("query", query_item), ("image", image_item)):
        if item is None:
            raise DataError(f"no {what} item given")
        if isinstance(item, (list, tuple)):
            raise DataError(f"localize takes one {what} item, got a {type(item).__name__} of {len(item)}; call it once per item")
    g = graph or _build_graph()
    if path is None:
        path = plan_dense(g, query_modality, image_modality)
        qm, im = query_modality, image_modality
    else:
        from .tasks import _with_path

        path, qm, im = _with_path(g, query_modality, image_modality, path)
    check_dense_path(g, path, im)
    q = embed(_space(g, path.node), pin_for(qm, path.node), [query_item])[0]
    image_space = _space(g, path.target_node)
    image_pin = pin_for(im, path.target_node)
    dense = embed_dense(image_space, image_pin, [image_item])[0]
    whole = embed(image_space, image_pin, [image_item])[0]
    return Heatmap(scores=(dense @ q).float(), query=query_item, image=image_item, query_modality=qm, image_modality=im,
                   space=path.target_node, path=path, score=float(whole @ q))


def embed_dense(mcr: MCR, modality: str, items: Sequence[Any], *, batch_size: int | None = None) -> torch.Tensor:
    """Patch embeddings of ``items`` of ``modality`` (``m`` or ``m@space``) from ``mcr``:
    float32 (len(items), H, W, dim), each location's row L2-normalised. Checks the request and
    every ``encode_dense`` return, as ``embed`` does for ``encode``; not cached."""
    base = check_modality(mcr, modality)
    if split_pin(modality)[1] in (None, mcr.name):
        modality = base
    if isinstance(items, (str, bytes)):
        raise DataError(f"items must be a list, got a single {type(items).__name__}; wrap it: [{items[:40]!r}]")
    items = list(items)
    if not items:
        raise DataError(f"no items to encode for {modality!r} with {mcr.name!r}")
    if not isinstance(mcr, ConnectedMCR) and base not in _dense_of(mcr):  # a connected space asks the parent it routes to
        raise ConfigError(f"space {mcr.name!r} has no dense (patch-level) {base} features"
                          f" (it has them for: {', '.join(_dense_of(mcr)) or 'nothing'})")
    bs = batch_size or getattr(mcr, "batch_size", 64) or 64
    out, grid = [], None
    where = f"plugin {mcr.name!r} encoding dense {modality!r}"
    with torch.inference_mode():
        for start in range(0, len(items), bs):
            batch = items[start : start + bs]
            try:
                emb = mcr.encode_dense(modality, batch)
            except MCRGraphError:
                raise
            except Exception as e:  # noqa: BLE001 - a plugin bug: name the plugin, keep the cause
                raise EncoderError(f"{where} raised {type(e).__name__}: {e}") from e
            if not isinstance(emb, torch.Tensor) or emb.ndim != 4 or emb.shape[0] != len(batch) or emb.shape[3] != mcr.dim:
                got = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
                raise EncoderOutputError(f"{where} returned {got}, expected a tensor ({len(batch)}, H, W, {mcr.dim})")
            if grid is not None and tuple(emb.shape[1:3]) != grid:
                raise EncoderOutputError(f"{where} returned a {tuple(emb.shape[1:3])} grid after a {grid} one; the grid must not change")
            grid = tuple(emb.shape[1:3])
            n, h, w, d = emb.shape
            check_embeddings(emb.reshape(n * h * w, d), n * h * w, d, where + " (rows are patches)")
            out.append(emb.detach().cpu())
    return (torch.cat(out) if len(out) > 1 else out[0]).clone()


def plan_dense(g: MCRGraph, query_modality: str, image_modality: str = "image") -> Path:
    """``g.plan(query, image)``, unless the image's space there has no dense features: then
    the cheapest path whose image side starts in a plugin space that has them. A pinned image
    modality is kept as given (``check_dense_path`` then says what is wrong)."""
    path = g.plan(query_modality, image_modality)
    base, pin = split_pin(image_modality)
    if pin is not None or base in _dense_of(_space(g, path.target_route[0])):
        return path
    from .planner import cheapest

    found, first_error = [], None
    for name in dense_spaces(g, base, plugins_only=True):
        try:
            found.append(g.plan(query_modality, f"{base}@{name}"))
        except NoPathError as e:
            first_error = first_error or e
    if found:
        return cheapest(g.nx, found)  # ties broken as the planner breaks them
    if first_error is not None:
        raise NoPathError(f"{path.target_route[0]!r} has no dense {base} features, and no space that compares {query_modality} with "
                          f"a dense {base} space exists yet: {first_error}", first_error.steps)
    return path


def check_dense_path(g: MCRGraph, path: Path, image_modality: str) -> None:
    """ConfigError unless the plugin space that encodes the image on ``path`` has dense features."""
    base = split_pin(image_modality)[0]
    origin = path.target_route[0]
    if base in _dense_of(_space(g, origin)):
        return
    able = dense_spaces(g, base)
    hint = (f"spaces with dense {base} features: {', '.join(able)}" if able else
            "no installed space has them; a plugin adds them with MCR.dense_modalities() and MCR.encode_dense() (docs/plugins.md)")
    raise ConfigError(f"cannot localize: {base} is encoded by {origin!r} on the path {path.describe()}, and {origin!r} has no dense "
                      f"(patch-level) {base} features; {hint}")


def dense_spaces(g: MCRGraph, modality: str, plugins_only: bool = False) -> list[str]:
    """The spaces of ``g`` that give dense features for ``modality`` (sorted)."""
    out = []
    for name, attrs in g.nx.nodes(data=True):
        if plugins_only and attrs["kind"] != "plugin":
            continue
        if attrs["missing"] or modality not in attrs["modalities"]:
            continue
        if modality in _dense_of(attrs["mcr"]):
            out.append(name)
    return sorted(out)


def picture(item: Any):
    """The picture an image item shows, as uint8 (H, W, 3) RGB, for drawing under a heat map:
    an image file at full size, a plugin's own item id (``item_picture`` hook), a PIL image or an
    array; None otherwise."""
    import numpy as np

    try:
        from .plugins import hook

        shown = hook().item_picture(item=item)  # a plugin's own item ids (the mini world's "mini:...")
        if shown is not None:
            return shown
        if isinstance(item, (str, os.PathLike)):
            from PIL import Image

            with Image.open(FilePath(item)) as im:
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                return np.asarray(Image.alpha_composite(white, im).convert("RGB"))
        if hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
            return np.asarray(item.convert("RGB"))
        arr = np.asarray(item)
        if np.issubdtype(arr.dtype, np.floating):
            arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
            return None
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        return arr[:, :, :3] if arr.shape[2] in (3, 4) else None
    except Exception:  # noqa: BLE001 - nothing to draw under the map; it is drawn alone
        return None


def _dense_of(mcr: MCR) -> tuple[str, ...]:
    try:
        return tuple(mcr.dense_modalities())
    except MCRGraphError:  # e.g. a connector whose parent is not installed
        return ()


def _space(g: MCRGraph, name: str) -> MCR:
    from .registry import get_mcr

    return g.mcr(name) if name in g.nx else get_mcr(name)
