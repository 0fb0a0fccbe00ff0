"""Localization heat maps: where in an image a query (a sound, a caption, a point cloud) is.

Spaces that can return dense (patch-level) features say so with ``MCR.dense_modalities()``
and implement ``MCR.encode_dense`` (mini-clip and mini-ulip do for images; a connected space
does when the parent that encodes the image does, by passing each patch through its head).
``localize`` plans where the query and the image meet, as ``search`` does, and returns the
cosine of the query's embedding with each patch embedding: the C-MCR paper's audio-to-patch
maps, computed with CLIP's patch tokens through the connector."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..spaces.encoding import dense_of, embed, embed_dense  # noqa: F401 - embed_dense re-exported
from ..errors import AmbiguousPathError, ConfigError, DataError, NoPathError
from ..planning.graph import MCRGraph
from ..planning.graph import graph as _build_graph
from ..spaces.mcr import split_pin
from ..planning.planner import Path, cheapest, pin_for


ADD_DENSE = "a plugin adds them with MCR.dense_modalities() and MCR.encode_dense() (docs/plugins.md)"


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
        path, qm, im = g.path_for(query_modality, image_modality, path)
    check_dense_path(g, path, im)
    q = embed(g.mcr(path.node), pin_for(qm, path.node), [query_item])[0]
    image_space = g.mcr(path.target_node)
    image_pin = pin_for(im, path.target_node)
    dense = embed_dense(image_space, image_pin, [image_item])[0]
    whole = embed(image_space, image_pin, [image_item])[0]
    return Heatmap(scores=(dense @ q).float(), query=query_item, image=image_item, query_modality=qm, image_modality=im,
                   space=path.target_node, path=path, score=float(whole @ q))


def plan_dense(g: MCRGraph, query_modality: str, image_modality: str = "image") -> Path:
    """``g.plan(query, image)``, unless the image's space there has no dense features (or
    several spaces tie there): then the best path whose image side starts in a plugin space
    that has them. A pinned image modality is kept as given (``check_dense_path`` then says
    what is wrong)."""
    base, pin = split_pin(image_modality)
    try:
        path, tie = g.plan(query_modality, image_modality), None
    except AmbiguousPathError as e:
        if pin is not None:
            raise
        path, tie = None, e  # the tied spaces may differ in dense features: let those decide
    if pin is not None or (path is not None and base in dense_of(g.mcr(path.target_route[0]))):
        return path
    found, first_error = [], None
    for name in dense_spaces(g, base, plugins_only=True):
        try:
            found.append(g.plan(query_modality, f"{base}@{name}"))
        except NoPathError as e:
            first_error = first_error or e
    if found:
        return cheapest(g.nx, found)  # ties broken as the planner breaks them
    if tie is not None and not dense_spaces(g, base):
        raise ConfigError(f"cannot localize: no installed space has dense (patch-level) {base} features; {ADD_DENSE}")
    if tie is not None:
        raise tie
    if first_error is not None:
        raise NoPathError(f"{path.target_route[0]!r} has no dense {base} features, and no space that compares {query_modality} with "
                          f"a dense {base} space exists yet: {first_error}", first_error.steps)
    return path


def check_dense_path(g: MCRGraph, path: Path, image_modality: str) -> None:
    """ConfigError unless the plugin space that encodes the image on ``path`` has dense features."""
    base = split_pin(image_modality)[0]
    origin = path.target_route[0]
    if base in dense_of(g.mcr(origin)):
        return
    able = dense_spaces(g, base)
    hint = (f"spaces with dense {base} features: {', '.join(able)}" if able else
            f"no installed space has them; {ADD_DENSE}")
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
        if modality in dense_of(attrs["mcr"]):
            out.append(name)
    return sorted(out)


def picture(item: Any):
    """The picture an image item shows, as uint8 (H, W, 3) RGB, for drawing under a heat map:
    an image file at full size, a PIL image, an array, or an item a plugin can draw (the
    ``item_picture`` hook: the mini world's ids); None when there is nothing to draw."""
    import numpy as np

    from ..io.media import pil_image
    from ..spaces.plugins import hook

    try:
        drawn = hook().item_picture(item=item)
        if drawn is not None:
            return np.asarray(drawn, dtype=np.uint8)
        return np.asarray(pil_image(item))
    except Exception:  # noqa: BLE001 - nothing to draw under the map; it is drawn alone
        return None
