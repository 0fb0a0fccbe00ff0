"""Retrieval metrics over a similarity matrix and item labels."""
from __future__ import annotations

import numpy as np
import torch


def retrieval(sim: torch.Tensor, query_labels, gallery_labels, ks=(1, 5)) -> dict[str, float]:
    """R@k (a relevant item among the top k) and mAP, where gallery items whose label equals
    the query's are relevant. Queries with no relevant item are skipped."""
    q = torch.as_tensor(query_labels)
    g = torch.as_tensor(gallery_labels)
    relevant = q[:, None] == g[None, :]
    keep = relevant.any(dim=1)
    sim, relevant = sim[keep], relevant[keep]
    order = sim.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order).float()
    out = {f"r{k}": hits[:, :k].amax(dim=1).mean().item() for k in ks}
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float32)
    precision = hits.cumsum(dim=1) / ranks
    out["map"] = ((precision * hits).sum(dim=1) / hits.sum(dim=1)).mean().item()
    out["queries"] = float(len(hits))
    return out


def chance(query_labels, gallery_labels, ks=(1, 5)) -> dict[str, float]:
    """Expected R@k of a random ranking: with r relevant items among n, 1 - C(n-r, k) / C(n, k)
    (k / n when each query has one), averaged over queries that have a relevant item."""
    q = torch.as_tensor(query_labels)
    g = torch.as_tensor(gallery_labels)
    r = (q[:, None] == g[None, :]).sum(dim=1).double()
    r = r[r > 0]
    n = len(g)
    out = {}
    for k in ks:
        miss = torch.ones_like(r)
        for i in range(min(k, n)):
            miss = miss * ((n - r - i).clamp_min(0) / (n - i))
        out[f"r{k}"] = (1 - miss).mean().item() if len(r) else 0.0
    return out


# -- benchmark metrics (mcrgraph/datasets): classification and sound-source localization -----


def topk_accuracy(scores: torch.Tensor, targets, ks=(1, 3, 5)) -> dict[str, float]:
    """Acc@k: the fraction of rows of ``scores`` (N, C) whose target column (``targets``, N
    class indices) is among the k highest scores. Ties are broken by column order, like a
    stable sort; k larger than C counts every row as a hit."""
    scores = torch.as_tensor(scores)
    t = torch.as_tensor(targets, dtype=torch.long)
    if scores.ndim != 2 or len(t) != len(scores):
        raise ValueError(f"scores must be (N, C) with N targets, got {tuple(scores.shape)} and {len(t)} targets")
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    rank = (order == t[:, None]).float().argmax(dim=1)  # 0 = best
    return {f"acc{k}": (rank < k).float().mean().item() for k in ks}


def ciou(heatmap, gt_map, keep: float = 0.5) -> float:
    """Consensus IoU of one heat map against a ground-truth map of the same size (Chen et al.
    2021, "Localizing Visual Sounds the Hard Way"; EZ-VSL's evaluator). The heat map is scaled to
    [0, 1] and its top ``keep`` fraction of pixels (those >= the value at rank
    ``int(keep * pixels)`` of the sorted map: the upper half by default) is the predicted
    region P; with G the ground truth (1 where annotators agree, 0.5 where one of two did, 0
    outside), cIoU = sum(P * G) / (sum(G) + sum(P where G == 0))."""
    h = np.asarray(heatmap, dtype=np.float64)
    g = np.asarray(gt_map, dtype=np.float64)
    if h.shape != g.shape or h.ndim != 2:
        raise ValueError(f"heat map {h.shape} and ground truth {g.shape} must be the same 2-D size")
    span = h.max() - h.min()
    h = (h - h.min()) / span if span > 0 else np.zeros_like(h)
    threshold = np.sort(h.ravel())[min(int(h.size * keep), h.size - 1)]
    pred = (h >= threshold).astype(np.float64)
    denom = g.sum() + (pred * (g == 0)).sum()
    return float((pred * g).sum() / denom) if denom > 0 else 0.0


def localization(cious, at: float = 0.5, steps: int = 21) -> dict[str, float]:
    """``cIoU``: the fraction of samples whose cIoU is >= ``at`` (0.5, as reported on
    Flickr-SoundNet and VGG-SS); ``AUC``: the area under that fraction as the threshold goes
    from 0 to 1 in ``steps`` evenly spaced values (0, 0.05, ..., 1), by the trapezoid rule."""
    return {"cIoU": ciou_success(cious, at), "AUC": auc(cious, steps)}


def ciou_success(cious, at: float = 0.5) -> float:
    c = np.asarray(cious, dtype=np.float64)
    return float((c >= at).mean()) if len(c) else 0.0


def auc(cious, steps: int = 21) -> float:
    """Area under the success curve: for thresholds t in linspace(0, 1, steps), the fraction of
    cIoUs >= t; integrated over t by the trapezoid rule (in [0, 1])."""
    c = np.asarray(cious, dtype=np.float64)
    if not len(c):
        return 0.0
    ts = np.linspace(0.0, 1.0, steps)
    success = np.array([(c >= t).mean() for t in ts])
    return float(((success[1:] + success[:-1]) / 2 * np.diff(ts)).sum())
