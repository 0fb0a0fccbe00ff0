"""Retention: how much of a parent space's own retrieval a connected space keeps.

For a non-via modality m of parent P: R@1 of m -> via through the connected space (m from P,
through P's head; the via items as the connected space encodes them, unpinned) divided by
the same retrieval inside P alone. The same-side figure sends the via items through P's head
too (``via@P``), so the head's loss (same-side) and the crossing's loss (the rest) read apart."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..spaces.encoding import embed
from ..spaces.mcr import MCR
from ..ranking.metrics import retrieval


def _r1(queries: torch.Tensor, gallery: torch.Tensor, q_lab, g_lab) -> float:
    return retrieval(queries @ gallery.T, q_lab, g_lab, ks=(1,))["r1"]


def retention(space: MCR, parent: MCR, modality: str, via: str, queries: Sequence[Any], query_labels,
              gallery: Sequence[Any], gallery_labels, groups: Mapping[str, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """Per query group (boolean masks over ``queries``; default one group "all"): the parent's
    R@1 alone, the connected space's R@1 and their ratio (retention), and the same-side R@1
    and ratio. Each group ranks the gallery items of its own queries' labels (the real voice's
    digits among the digit captions). A group whose parent R@1 is 0 has no retention (nan)."""
    q_lab, g_lab = np.asarray(query_labels), np.asarray(gallery_labels)
    groups = groups or {"all": np.ones(len(q_lab), bool)}
    pinned = f"{modality}@{parent.name}"
    alone_q, alone_g = embed(parent, modality, queries), embed(parent, via, gallery)
    conn_q = embed(space, pinned, queries)
    conn_g = embed(space, via, gallery)
    same_g = embed(space, f"{via}@{parent.name}", gallery)
    out = {}
    for name, mask in groups.items():
        mask = np.asarray(mask, bool)
        if not mask.any():
            continue
        m, keep = torch.from_numpy(mask), np.isin(g_lab, q_lab[mask])
        k = torch.from_numpy(keep)
        alone = _r1(alone_q[m], alone_g[k], q_lab[mask], g_lab[keep])
        crossed = _r1(conn_q[m], conn_g[k], q_lab[mask], g_lab[keep])
        same = _r1(conn_q[m], same_g[k], q_lab[mask], g_lab[keep])
        ratio = (lambda x: x / alone if alone > 0 else float("nan"))
        out[name] = {"parent alone R@1": alone, "connected R@1": crossed, "retention": ratio(crossed),
                     "same-side R@1": same, "same-side retention": ratio(same), "queries": int(mask.sum()),
                     "gallery": int(keep.sum())}
    return out
