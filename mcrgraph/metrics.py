"""Retrieval metrics over a similarity matrix and item labels."""
from __future__ import annotations

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
