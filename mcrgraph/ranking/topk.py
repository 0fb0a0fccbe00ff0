"""Exact top-k by inner product over a gallery of embeddings, in chunks of gallery rows.

``topk(queries, gallery, k)`` returns, for each query row, the ``k`` gallery rows with the
largest ``query · row``, best first, ties broken by the lower gallery index: the same as
``torch.sort(queries @ gallery.T, dim=1, descending=True, stable=True)[:, :k]``. The scores
are the same float32 products bit for bit at the chunk sizes used (tests/test_topk.py; BLAS
may round the last bit differently only for very narrow products, which is why a short last
chunk joins the one before). At most a (query block x ``chunk``) block of scores exists.

Speed (benchmarks/query.py; docs/architecture.md, Performance): a query against 1M x 512
float32 rows reads 2 GiB and is bound by memory bandwidth. For a single query BLAS runs a
one-core matrix-vector product, so the chunks are split between torch's threads instead.
A batch of queries is scored against each chunk together: one pass over the gallery serves
the whole batch.

A gallery stored in bfloat16 or float16 (``gallery.to(torch.bfloat16)``, once) halves the
bytes read. The product is then taken in that type (the query is rounded to it too) and the
scores widened to float32, so it is approximate: ranks can swap between rows whose scores
differ by less than the rounding (recall@10 against exact float32 is measured in the tests
and the benchmark). On the benchmark machine float16 was the faster one for single queries,
bfloat16 for batches (torch's float16 matrix product does not batch on that CPU).
``dtype=`` rounds a float32 gallery chunk by chunk instead, for one-off calls; it still reads
the float32 gallery and converts it, so it is slower, not faster."""
from __future__ import annotations

import concurrent.futures

import torch

from ..errors import ConfigError, DataError

CHUNK_SCORES = 1 << 18  # default chunk: about this many scores (queries x rows) per product ...
CHUNK_MIN, CHUNK_MAX = 1 << 12, 1 << 16  # ... within these rows (tuned on 1M x 512, benchmarks/query.py)
MAX_SCORES = 1 << 22  # query block x chunk scores held at once (16 MiB of float32)
REDUCED = (torch.bfloat16, torch.float16)


def topk(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    k: int,
    *,
    chunk: int | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores, indices)``, each ``(len(queries), k)``: the ``k`` best gallery rows of every
    query by inner product, best first, ties in gallery order. Exact for a float32 (or
    float64) gallery. ``gallery`` may be stored in bfloat16/float16: the product is then
    taken in that type and the scores are returned as float32 (approximate); ``dtype`` rounds
    a wider gallery to that type chunk by chunk. ``chunk``: gallery rows scored at a time (memory stays bounded by about
    ``len(queries) x chunk`` scores, or less: queries are also taken in blocks); None: 65,536
    rows for one query, fewer for batches (4,096 from 64 queries)."""
    q, g, k, chunk, store = _check(queries, gallery, k, chunk, dtype)
    n, nq = len(g), len(q)
    kind = store or g.dtype
    if kind in REDUCED:  # the product in the gallery's own type (oneDNN/AVX-512 kernels), scores widened
        compute, out_dtype = kind, torch.float32
    else:
        compute = out_dtype = torch.float64 if torch.float64 in (q.dtype, g.dtype) else torch.float32
    q = q.to(compute)
    ranges = list(_chunks(n, chunk))
    block = max(1, min(nq, MAX_SCORES // min(chunk, n)))
    workers = min(torch.get_num_threads(), len(ranges))
    if nq == 1 and compute not in REDUCED and workers > 1:
        # one query: BLAS scores it on one core (a matrix-vector product), which cannot use the
        # memory bandwidth of all cores; so each thread scans its own share of the chunks
        share = [ranges[len(ranges) * w // workers : len(ranges) * (w + 1) // workers] for w in range(workers)]
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(_scan, q, g, k, part, store, compute, out_dtype, 0) for part in share]
            parts = [f.result() for f in futures]  # in gallery order: the first error is the lowest row's
        v, i = parts[0]
        for pv, pi in parts[1:]:
            v, i = _merge(v, i, pv, pi, k)
        return v, i
    scores = torch.empty(nq, k, dtype=out_dtype)
    indices = torch.empty(nq, k, dtype=torch.long)
    for qs in range(0, nq, block):
        scores[qs : qs + block], indices[qs : qs + block] = _scan(q[qs : qs + block], g, k, ranges, store, compute, out_dtype, qs)
    return scores, indices


def _scan(qb, g, k, ranges, store, compute, out_dtype, q0):
    """Running top ``k`` of the queries ``qb`` over the gallery rows in ``ranges``."""
    best_v = torch.empty(len(qb), 0, dtype=out_dtype)
    best_i = torch.empty(len(qb), 0, dtype=torch.long)
    for start, stop in ranges:
        rows = g[start:stop]
        if store is not None and rows.dtype != store:
            rows = rows.to(store)
        if rows.dtype != compute:
            rows = rows.to(compute)
        s = qb @ rows.T
        try:
            v, i = _chunk_top(s, min(k, stop - start))
        except _NotFinite:
            _raise_not_finite(s, q0, start)
        best_v, best_i = _merge(best_v, best_i, v.to(out_dtype), i + start, k)
    return best_v, best_i


def _chunks(n: int, chunk: int):
    """``(start, stop)`` row ranges of ``chunk`` rows; a last range shorter than ``chunk // 4``
    joins the one before, so no product is much narrower than the others (BLAS may pick
    another kernel for a sliver, which can round the last bit of a score differently)."""
    start = 0
    while start < n:
        stop = min(n, start + chunk)
        if 0 < n - stop < chunk // 4:
            stop = n
        yield start, stop
        start = stop


def _chunk_top(s: torch.Tensor, kk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``kk`` best columns of every row of ``s``, in column order; among columns tied
    with the ``kk``-th best value, the lowest ones (torch.topk alone picks any). NaN or +inf
    among them raises DataError (torch.topk ranks NaN above every number)."""
    if kk == s.shape[1]:
        if not torch.isfinite(s).all():
            raise _NotFinite(s)
        return s, torch.arange(kk).expand(len(s), kk)
    wide = min(s.shape[1], 2 * kk + 8)  # more candidates than needed, to settle ties among them
    v, i = torch.topk(s, wide, dim=1)
    if not torch.isfinite(v).all():
        raise _NotFinite(s)
    if wide == s.shape[1] or bool((v[:, kk - 1] > v[:, -1]).all()):
        # every column tied with the kk-th best is a candidate: order the candidates by column,
        # then stably by value, and keep the first kk
        i, by_column = i.sort(dim=1)
        best = torch.sort(v.gather(1, by_column), dim=1, descending=True, stable=True).indices[:, :kk]
        i = i.gather(1, best).sort(dim=1).values
        return s.gather(1, i), i
    kth = v[:, kk - 1 : kk]  # a tie wider than the candidates: settle it over the whole row
    above = s > kth
    at = s == kth
    need = kk - above.sum(dim=1, keepdim=True)
    take = above | (at & (at.cumsum(dim=1) <= need))
    i = take.nonzero()[:, 1].view(len(s), kk)  # row-major: each row's columns ascending
    return s.gather(1, i), i


class _NotFinite(Exception):
    def __init__(self, s):
        self.s = s


def _merge(best_v, best_i, v, i, k):
    """Top ``k`` of the running best and candidates from later gallery rows, each in an order
    where equal values come by ascending index (value order with ties by index, or plain
    index order); a stable descending sort then keeps ties in gallery order."""
    cv, ci = torch.cat([best_v, v], dim=1), torch.cat([best_i, i], dim=1)
    order = torch.sort(cv, dim=1, descending=True, stable=True).indices[:, :k]
    return cv.gather(1, order), ci.gather(1, order)


def _check(queries, gallery, k, chunk, dtype):
    for name, t in (("queries", queries), ("gallery", gallery)):
        if not isinstance(t, torch.Tensor):
            raise DataError(f"topk: {name} must be a torch tensor, got {type(t).__name__}")
        if t.dim() != 2:
            raise DataError(f"topk: {name} must be 2-D (rows x dim), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise DataError(f"topk: {name} must be floating point, got {t.dtype}")
    if len(gallery) == 0:
        raise DataError("topk: the gallery is empty; give at least one row")
    if queries.shape[1] != gallery.shape[1]:
        raise DataError(f"topk: queries have dim {queries.shape[1]} but the gallery has dim {gallery.shape[1]}")
    if not torch.isfinite(queries).all():
        row = int((~torch.isfinite(queries)).any(dim=1).nonzero()[0])
        raise DataError(f"topk: query {row} contains NaN or infinity")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"topk: k must be a whole number >= 1, got {k!r}")
    if k > len(gallery):
        raise ConfigError(f"topk: k = {k} is more than the {len(gallery)} gallery rows; ask for at most {len(gallery)}")
    if chunk is None:
        chunk = min(CHUNK_MAX, max(CHUNK_MIN, CHUNK_SCORES // max(1, len(queries))))
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConfigError(f"topk: chunk must be a whole number >= 1, got {chunk!r}")
    if dtype is not None and dtype not in REDUCED + (torch.float32, torch.float64):
        raise ConfigError(f"topk: dtype must be None, torch.float32, torch.bfloat16 or torch.float16, got {dtype}")
    return queries, gallery, k, chunk, dtype


def _raise_not_finite(s: torch.Tensor, q0: int, g0: int):
    bad = (~torch.isfinite(s)).nonzero()[0]
    raise DataError(f"topk: the score of query {q0 + int(bad[0])} and gallery row {g0 + int(bad[1])} is not finite; "
                    "the gallery holds NaN or infinity (or values too large for the score's float type)")
