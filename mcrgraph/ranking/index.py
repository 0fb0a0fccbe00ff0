"""A gallery kept ready for many top-k queries: ``GalleryIndex(embeddings, kind)``.

- ``exact``: float32, ``mcrgraph.ranking.topk`` (exact; ties in gallery order).
- ``fp16`` / ``bf16``: the gallery stored once in half precision, half the bytes each query
  reads (approximate: ranks may swap between rows closer than the rounding).
- ``faiss-ivf``: FAISS inverted lists (``IndexIVFFlat``, inner product), the optional
  ``faiss-cpu`` extra (``pip install 'mcrgraph[faiss]'``). ``nlist`` k-means cells (default
  sqrt(n), trained on 64 rows per cell), of which each query scans ``nprobe`` (default 16):
  approximate, and much faster than a scan on large galleries of clustered (real) embeddings.
- ``faiss-ivfpq``: the same cells with each row stored as ``pq_m`` bytes of product-quantizer
  codes (``IndexIVFPQ``, 8 bits per sub-vector; default ``pq_m`` = dim / 8, so a 512-d row
  takes 64 bytes instead of 2,048): for galleries too large to hold in memory otherwise.
  Scores are approximate, so recall is lower than ``faiss-ivf``'s at the same ``nprobe``;
  the codebooks are trained on at least 10,000 rows (all rows when fewer), and it needs
  at least 256.
- ``faiss-sq8``: every value stored in 8 bits (FAISS ``IndexScalarQuantizer``, per-dimension
  ranges), a quarter of float32's bytes, scanned exhaustively: approximate like fp16.
- ``faiss-hnsw``: FAISS's HNSW graph (``IndexHNSWFlat``, ``hnsw_m`` links per row), searched
  with ``ef_search`` candidates (at least k; FAISS's own default is 16): approximate, no
  training, slow to build (each row is inserted into the graph), very fast to query. On 6,000
  rows in 40 tight clusters, recall@10 was 0.75 at ``ef_search=64``, 0.91 at 128, 0.998 at 512. Built with several threads, the graph and so
  the answers can differ between builds.
- ``faiss-flat`` is FAISS's exact scan, for comparison.

``rerank=R`` (approximate kinds): the index proposes ``max(R, k)`` rows per query, and those
are scored against the float32 rows and the best k returned, with exact scores. It keeps a
reference to the given embeddings (no copy when they are float32; a memory-mapped tensor,
e.g. ``torch.from_file(path, size=n * d).view(n, d)``, stays on disk), so the compressed
kinds then save memory only with such a gallery. On 1M clustered 512-d rows,
``faiss-ivfpq``'s recall@10 of 0.17 became 0.50 / 0.78 / 0.998 with ``rerank`` 100 / 300 /
1,000, at 0.8 / 1.0 / 1.6 ms per query (benchmarks/README.md).

Build it once, query it many times; ``mcrgraph.search(..., index=...)`` builds one per call."""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError, DataError
from .topk import topk

KINDS = ("exact", "fp16", "bf16", "faiss-flat", "faiss-ivf", "faiss-ivfpq", "faiss-sq8", "faiss-hnsw")
_IVF = ("faiss-ivf", "faiss-ivfpq")
_EXACT = ("exact", "faiss-flat")  # score every row exactly: nothing to re-rank
PQ_MIN_ROWS = 256  # one row per centroid of an 8-bit codebook, FAISS's minimum
PQ_TRAIN_ROWS = 10_000  # FAISS asks for 39 rows per centroid: 9,984
_HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}
RERANK_QUERIES = 256  # queries per block of the re-rank: a block gathers queries x R rows


class GalleryIndex:
    def __init__(self, embeddings: torch.Tensor, kind: str = "exact", *, nlist: int | None = None, nprobe: int = 16,
                 seed: int = 0, hnsw_m: int = 32, ef_search: int = 128, pq_m: int | None = None,
                 rerank: int | None = None):
        if kind not in KINDS:
            raise ConfigError(f"unknown index kind {kind!r}; choose one of: {', '.join(KINDS)}")
        if rerank is not None and kind in _EXACT:
            raise ConfigError(f"rerank applies to the approximate index kinds; {kind!r} already scores every row exactly")
        if not isinstance(embeddings, torch.Tensor) or embeddings.dim() != 2 or not embeddings.is_floating_point():
            raise DataError("a gallery index takes a 2-D floating-point tensor of embeddings (rows x dim)")
        if len(embeddings) == 0:
            raise DataError("the gallery is empty; give at least one row")
        if not torch.isfinite(embeddings).all():
            row = int((~torch.isfinite(embeddings)).any(dim=1).nonzero()[0])
            raise DataError(f"gallery row {row} contains NaN or infinity")
        self.kind, self.n, self.dim = kind, len(embeddings), embeddings.shape[1]
        if kind in _HALF:
            self._gallery = embeddings.detach().to(_HALF[kind]).contiguous()
        elif kind == "exact":
            self._gallery = embeddings.detach().float().contiguous()
        else:
            self._faiss = _faiss_index(embeddings.detach().float().contiguous(), kind, nlist, seed, hnsw_m, pq_m)
        # search-time knobs, read at every search, so they may be changed on a built index
        # (rerank only on one built with it: only then are the rows kept)
        self.nprobe = _at_least_1("nprobe", nprobe) if kind in _IVF else None
        self.ef_search = _at_least_1("ef_search", ef_search) if kind == "faiss-hnsw" else None
        self.rerank = None if rerank is None else _at_least_1("rerank", rerank)
        self._rows = embeddings.detach() if rerank is not None else None

    def __len__(self) -> int:
        return self.n

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores, indices)``, each (len(queries), k), best first."""
        if not isinstance(queries, torch.Tensor) or queries.dim() != 2 or queries.shape[1] != self.dim:
            raise DataError(f"queries must be a (n, {self.dim}) tensor to search this gallery")
        if not torch.isfinite(queries).all():
            raise DataError("queries contain NaN or infinity")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.n:
            raise ConfigError(f"k must be a whole number from 1 to the gallery's {self.n} rows, got {k!r}")
        if self.rerank is None:
            return self._search(queries, k)
        if self._rows is None:
            raise ConfigError("this index was built without rerank, so it kept no float32 rows to re-score; build it with rerank=N")
        _, candidates = self._search(queries, min(self.n, max(k, _at_least_1("rerank", self.rerank))))
        return _rerank(queries.detach().float(), self._rows, candidates, k)

    def _search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.kind.startswith("faiss"):
            return topk(queries.float(), self._gallery, k)
        import numpy as np

        if self.ef_search is not None:
            self._faiss.hnsw.efSearch = max(_at_least_1("ef_search", self.ef_search), k)
        if self.nprobe is not None:
            self._faiss.nprobe = min(_at_least_1("nprobe", self.nprobe), self._faiss.nlist)
        scores, idx = self._faiss.search(np.ascontiguousarray(queries.detach().float().numpy()), k)
        # IVF may find fewer than k rows when the probed cells hold fewer; those come back as -1
        return torch.from_numpy(scores).float(), torch.from_numpy(idx).long()


def _rerank(queries: torch.Tensor, rows: torch.Tensor, candidates: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The best k of each query's candidate rows (-1: none) by exact float32 score, best first."""
    scores = torch.empty(len(queries), k)
    indices = torch.empty(len(queries), k, dtype=torch.long)
    for start in range(0, len(queries), RERANK_QUERIES):
        q, cand = queries[start : start + RERANK_QUERIES], candidates[start : start + RERANK_QUERIES]
        exact = torch.bmm(rows[cand.clamp_min(0)].float(), q.unsqueeze(2)).squeeze(2)  # (queries, R)
        exact.masked_fill_(cand < 0, float("-inf"))
        best, at = exact.topk(k, dim=1)
        scores[start : start + len(q)] = best
        indices[start : start + len(q)] = cand.gather(1, at).masked_fill_(best == float("-inf"), -1)
    return scores, indices


def _at_least_1(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def _faiss_index(x: torch.Tensor, kind: str, nlist: int | None, seed: int, hnsw_m: int, pq_m: int | None):
    try:
        import faiss
    except ImportError:
        raise ConfigError(f"index {kind!r} needs FAISS: pip install 'mcrgraph[faiss]' (faiss-cpu)") from None
    data = x.numpy()
    if kind == "faiss-flat":
        index = faiss.IndexFlatIP(x.shape[1])
    elif kind == "faiss-sq8":
        index = faiss.IndexScalarQuantizer(x.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.train(data)  # per-dimension min and max: one pass
    elif kind == "faiss-hnsw":
        if isinstance(hnsw_m, bool) or not isinstance(hnsw_m, int) or not 2 <= hnsw_m <= 256:
            raise ConfigError(f"hnsw_m must be a whole number from 2 to 256, got {hnsw_m!r}")
        index = faiss.IndexHNSWFlat(x.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
    else:
        nlist = nlist or max(1, min(len(x) // 39, int(math.sqrt(len(x)))))  # FAISS wants >= 39 points per cell to train
        if not 1 <= nlist <= len(x):
            raise ConfigError(f"nlist must be from 1 to the gallery's {len(x)} rows, got {nlist}")
        quantizer, d = faiss.IndexFlatIP(x.shape[1]), x.shape[1]
        # k-means on a sample of 64 rows per cell: on all of 1M x 512 rows with 4,000 cells
        # training took 264 s here; the cells come out about as good from a sample
        sample = 64 * nlist
        if kind == "faiss-ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            pq_m = _pq_m(pq_m, d, len(x))
            index = faiss.IndexIVFPQ(quantizer, d, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
            index.pq.cp.seed = seed
            index.pq.cp.min_points_per_centroid = 1  # fewer than 39 rows per code is allowed (see above), not warned about
            sample = max(sample, PQ_TRAIN_ROWS)
        index.cp.seed = seed
        rows = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:sample]
        index.train(data if len(rows) == len(x) else data[rows.sort().values.numpy()])
    index.add(data)
    return index


def _pq_m(pq_m: int | None, d: int, n: int) -> int:
    """Sub-vectors per row (one byte each), checked before FAISS would abort on it."""
    if n < PQ_MIN_ROWS:
        raise ConfigError(f"faiss-ivfpq trains 256 codes per sub-vector and needs at least {PQ_MIN_ROWS} gallery rows, "
                          f"got {n}; use faiss-ivf or exact for a gallery this small")
    pq_m = pq_m if pq_m is not None else max(1, d // 8)
    if isinstance(pq_m, bool) or not isinstance(pq_m, int) or pq_m < 1 or d % pq_m:
        raise ConfigError(f"pq_m must be a whole number that divides the dimension {d}, got {pq_m!r}")
    return pq_m
