"""One query against a gallery of unit vectors: ``torch.topk(gallery @ q, k)`` as the baseline
and a chunked variant (top-k per chunk, then top-k of the candidates)."""
from __future__ import annotations

import torch

from .common import median_time, threads, unit_rows


def topk_full(gallery: torch.Tensor, q: torch.Tensor, k: int):
    return torch.topk(gallery @ q, k)


def topk_chunked(gallery: torch.Tensor, q: torch.Tensor, k: int, chunk: int = 1 << 16):
    values, indices = [], []
    for start in range(0, len(gallery), chunk):
        v, i = torch.topk(gallery[start : start + chunk] @ q, min(k, len(gallery) - start))
        values.append(v)
        indices.append(i + start)
    v, i = torch.cat(values), torch.cat(indices)
    top = torch.topk(v, k)
    return top.values, i[top.indices]


def run(n_gallery: int, d: int, k: int, thread_counts: tuple[int, ...], repeats: int) -> dict:
    gen = torch.Generator().manual_seed(3)
    gallery, q = unit_rows(n_gallery, d, gen), unit_rows(1, d, gen)[0]
    same = torch.equal(topk_full(gallery, q, k).indices, topk_chunked(gallery, q, k)[1])
    rows = {}
    for t in thread_counts:
        with threads(t):
            rows[t] = {"full_ms": 1e3 * median_time(lambda: topk_full(gallery, q, k), repeats, warmup=2),
                       "chunked_ms": 1e3 * median_time(lambda: topk_chunked(gallery, q, k), repeats, warmup=2)}
    return {"n_gallery": n_gallery, "dim": d, "k": k, "repeats": repeats, "same_result": same,
            "gallery_bytes": n_gallery * d * 4, "by_threads": rows}
