"""Top-k memory readouts: each query's softmax over only its ``k`` best keys.

The full readout (``losses.memory_readout``) weighs every key: ``normalize(softmax(q · Kᵀ / τ) · V)``.
For a 1M-item gallery read out over 100k via items that is two 1M x 100k x 512 products
(about 1e17 multiply-adds). With a sharp τ nearly all of a query's softmax mass sits on a few
keys, so ``topk_readout`` finds each query's ``k`` best keys (one product, or a FAISS index)
and takes the softmax over those alone. What it drops is the mass of the other keys, each
at most ``exp((s_k - s_1) / τ)`` of the best one's weight (``s_1``, ``s_k``: the best and the
k-th best score), so the error falls as k grows and as τ sharpens; ``readout_error`` measures
it against the full readout. Measured speed-ups and errors: docs/architecture.md (Performance,
"Top-k readout") and benchmarks/results/topk-readout.md.

Backends: ``exact`` (``mcrgraph.ranking.topk``: chunked over the keys, exact top-k, memory bounded),
``faiss-flat`` (FAISS's exact scan) and ``faiss-ivf`` (inverted lists: approximate, fastest on
clustered keys), both through ``mcrgraph.ranking.index.GalleryIndex`` and the optional ``faiss``
extra. The output is normalised like the full readout's, and ``k`` at or above the number of
keys gives the full readout itself."""
from __future__ import annotations

import math

import torch

from ..errors import ConfigError, DataError
from ..ranking.topk import topk
from .losses import memory_readout

BACKENDS = ("exact", "faiss-flat", "faiss-ivf")
QUERY_BLOCK = 16_384  # queries searched at a time: bounds the (block x k) scores and indices
GATHER_ELEMENTS = 1 << 22  # values gathered per product: rows x k x d_v, 16 MiB of float32
# exact backend's keys per chunk when not given: 512 x k within these bounds. mcrgraph.ranking.topk
# merges each chunk's best k into the running best, so for a large k small chunks cost more in
# merging than in scoring (2,000 x 100k x 512, k = 128: 12.9 s at 4,096 keys a chunk, 5.8 s at
# 65,536, the product alone 2.5 s; k = 8: 2.6 s at 4,096, slower with larger chunks)
CHUNK_PER_K, CHUNK_MIN, CHUNK_MAX = 512, 4096, 65_536


def topk_readout(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, temperature: float, k: int,
                 backend: str = "exact", *, chunk: int | None = None, index=None, nprobe: int = 16,
                 nlist: int | None = None, seed: int = 0) -> torch.Tensor:
    """``normalize(softmax(q · K_topᵀ / τ) · V_top)`` for every query row, where ``K_top`` and
    ``V_top`` are the query's ``k`` best keys by inner product and their values: a float32
    ``(len(queries), values.shape[1])`` tensor. ``k >= len(keys)`` is the full readout
    (``losses.memory_readout``), computed as such.

    ``backend``: ``exact``, ``faiss-flat`` or ``faiss-ivf`` (needs ``pip install 'mcrgraph[faiss]'``).
    ``chunk``: keys scored at a time by ``exact`` (None: 512 x k, from 4,096 to 65,536).
    ``index``: a ``mcrgraph.ranking.index.GalleryIndex`` already built over ``keys``, reused instead of
    building one per call (for FAISS backends when the same keys serve many calls; its own kind
    then decides the backend). ``nprobe``, ``nlist``, ``seed``: for ``faiss-ivf``'s index.
    An IVF query whose probed cells hold fewer than ``k`` keys is read out over those it found;
    one that found none is answered by the exact top-k."""
    _check(queries, keys, values, temperature, k, backend)
    if backend != "exact" and index is None:
        _faiss_or_explain(backend)  # also when k covers every key: the same call fails the same way everywhere
    d_v = values.shape[1]
    if not len(queries):
        return torch.zeros(0, d_v)
    q, keys_f, values_f = queries.detach().float(), keys.detach().float(), values.detach().float()
    if k >= len(keys):  # every key is among the top k: nothing to drop
        return memory_readout(q, keys_f, temperature, values=values_f)
    search = _searcher(keys_f, k, backend, chunk, index, nprobe, nlist, seed)
    out = torch.empty(len(q), d_v)
    for start in range(0, len(q), QUERY_BLOCK):
        qb = q[start : start + QUERY_BLOCK]
        scores, idx = search(qb)
        missing = (idx < 0).all(dim=1)
        if missing.any():  # IVF probed only empty cells for these queries
            scores[missing], idx[missing] = topk(qb[missing], keys_f, k, chunk=chunk)
        _weighted_sum(scores, idx, values_f, temperature, out[start : start + len(qb)])
    return out.div_(out.norm(2, dim=1, keepdim=True).clamp_min(1e-12))  # exactly F.normalize, in place


def readout_error(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, temperature: float, k: int,
                  backend: str = "exact", *, reference: torch.Tensor | None = None, **options) -> float:
    """The largest absolute difference, over every output element, between ``topk_readout``
    and the full readout (``losses.memory_readout``) of the same inputs. ``reference``: the full
    readout already computed (it costs the time the top-k readout saves); ``options`` go to
    ``topk_readout``."""
    got = topk_readout(queries, keys, values, temperature, k, backend, **options)
    if reference is None:
        reference = memory_readout(queries.detach().float(), keys.detach().float(), temperature, values=values.detach().float())
    if reference.shape != got.shape:
        raise DataError(f"readout_error: the reference readout has shape {tuple(reference.shape)}, "
                        f"the top-k readout {tuple(got.shape)}; pass the full readout of these same inputs")
    return float((got - reference.float()).abs().max()) if got.numel() else 0.0


def _searcher(keys: torch.Tensor, k: int, backend: str, chunk: int | None, index, nprobe: int, nlist: int | None, seed: int):
    """A function from a block of queries to their (scores, key indices), each (block, k), best first."""
    if index is None and backend == "exact":
        chunk = chunk or min(CHUNK_MAX, max(CHUNK_MIN, CHUNK_PER_K * k))
        return lambda qb: topk(qb, keys, k, chunk=chunk)
    from ..ranking.index import GalleryIndex

    if index is None:
        index = GalleryIndex(keys, backend, nlist=nlist, nprobe=nprobe, seed=seed)
    elif not isinstance(index, GalleryIndex):
        raise ConfigError(f"topk_readout: index must be a mcrgraph.ranking.index.GalleryIndex, got {type(index).__name__}")
    elif (len(index), index.dim) != tuple(keys.shape):
        raise DataError(f"topk_readout: the index holds {len(index)} rows of dim {index.dim} but the keys are "
                        f"{tuple(keys.shape)}; build the index over these keys")
    return lambda qb: index.search(qb, k)


def _weighted_sum(scores: torch.Tensor, idx: torch.Tensor, values: torch.Tensor, temperature: float,
                  out: torch.Tensor) -> None:
    """``softmax(scores / τ) · values[idx]`` into ``out``, a few rows at a time (the gathered
    values are rows x k x d_v); index -1 (no key found) weighs nothing."""
    k, d_v = idx.shape[1], values.shape[1]
    rows = max(1, GATHER_ELEMENTS // (k * d_v))
    absent = idx < 0
    logits = scores.float().masked_fill(absent, float("-inf")).div_(temperature)
    weights = torch.softmax(logits, dim=1)
    idx = idx.masked_fill(absent, 0)
    for s in range(0, len(idx), rows):
        picked = values[idx[s : s + rows]]  # (rows, k, d_v)
        torch.bmm(weights[s : s + rows].unsqueeze(1), picked, out=out[s : s + rows].unsqueeze(1))


def _faiss_or_explain(backend: str) -> None:
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise ConfigError(f"topk_readout backend {backend!r} needs FAISS, which is not installed: "
                          "pip install 'mcrgraph[faiss]' (faiss-cpu), or use backend='exact'") from None


def _check(queries, keys, values, temperature, k, backend) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"topk_readout: unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"topk_readout: k must be a whole number >= 1, got {k!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature <= 0:
        raise ConfigError(f"topk_readout: temperature must be a finite number > 0, got {temperature!r}")
    for name, t in (("queries", queries), ("keys", keys), ("values", values)):
        if not isinstance(t, torch.Tensor):
            raise DataError(f"topk_readout: {name} must be a torch tensor, got {type(t).__name__}")
        if t.dim() != 2 or not t.is_floating_point():
            raise DataError(f"topk_readout: {name} must be a 2-D floating-point tensor (rows x dim), "
                            f"got shape {tuple(t.shape)} of {t.dtype}")
    if not len(keys):
        raise DataError("topk_readout: there are no keys to read out over; give at least one key row")
    if queries.shape[1] != keys.shape[1]:
        raise DataError(f"topk_readout: queries have dim {queries.shape[1]} but keys have dim {keys.shape[1]}; "
                        "both must come from the same space")
    if len(values) != len(keys):
        raise DataError(f"topk_readout: {len(keys)} keys but {len(values)} value rows; give one value row per key")
    for name, t in (("queries", queries), ("keys", keys), ("values", values)):
        if name == "values" and t is keys:
            continue
        # a row's sum is finite unless the row holds NaN or infinity (or overflows: confirmed
        # below); 16x faster than torch.isfinite over every element here (0.03 s vs 0.55 s at 100k x 512)
        suspect = (~torch.isfinite(t.sum(dim=1))).nonzero()[:, 0]
        if len(suspect):
            bad = suspect[~torch.isfinite(t[suspect]).all(dim=1)]
            if len(bad):
                raise DataError(f"topk_readout: {name} row {int(bad[0])} contains NaN or infinity")
