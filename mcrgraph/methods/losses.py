"""Losses shared by the connector methods."""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from ..ranking.topk import topk


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised rows; row i of x and of y is a positive pair."""
    logits = x @ y.T / temperature
    target = torch.arange(len(x), device=x.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def recalls(x: torch.Tensor, y: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    """For each k in ``ks``: the fraction of rows of x whose paired row of y (row i of both)
    is among its k most similar rows of y, from one top-k pass. Chunked (``mcrgraph.ranking.topk``):
    a 100k-item validation split would need a 40 GB x @ yᵀ matrix in one piece."""
    if not len(x):
        return {k: float("nan") for k in ks}
    _, top = topk(x, y, min(max(ks), len(y)))
    hit_rank = top == torch.arange(len(x), device=top.device).unsqueeze(1)
    return {k: hit_rank[:, :k].any(dim=1).float().mean().item() for k in ks}


READOUT_ROWS = 2048  # queries per chunk of the memory readout
READOUT_ELEMENTS = 1 << 21  # its score buffer: rows x memory block, 8 MiB in float32


def memory_readout(queries: torch.Tensor, memory: torch.Tensor, temperature: float,
                   max_elements: int = READOUT_ELEMENTS, values: torch.Tensor | None = None,
                   threads: int | None = None, rows: int = READOUT_ROWS, fused: bool | None = False) -> torch.Tensor:
    """``normalize(softmax(queries · memoryᵀ / τ) · values)`` (values default to the memory).

    Computed like flash attention: ``rows`` queries at a time against blocks of the memory,
    with a running row maximum and sum, so the scores live only in a ``rows x block`` buffer
    of at most ``max_elements`` (8 MiB by default: it stays in L3 between the two matmuls)
    and each memory row is read once per ``rows`` queries. Against one softmax over whole
    score rows this was 1.5x faster at 8k x 100k x 512 on 2 cores; results agree to float
    rounding (up to a few 1e-6 on unit vectors).
    ``threads``: torch threads for the call (restored afterwards); None keeps the caller's.

    ``fused``: the readout is an attention with scale 1/τ, so torch's fused kernels that never
    hold the score matrix (flash or memory-efficient attention) can take it instead (True: fail
    if none applies; None: when one applies; False, the default: the blocked path above). Fused
    was 0.42x of the blocked time under load but within 5% of it on a quiet machine, and 2.5x
    slower on clustered memories at τ 0.01 (real embeddings at C-MCR's τ1), where its softmax
    meets float32 subnormals that the blocked path floors away (EXP_FLOOR; docs/architecture.md)."""
    value_sets = [memory if values is None else values]
    if fused is not False and len(memory) and len(queries):
        out = _fused_readout(queries, memory, value_sets[0], temperature, threads)
        if out is not None:
            return out
        if fused:
            raise RuntimeError(f"no fused attention kernel in torch {torch.__version__} for these inputs "
                               f"({queries.dtype}, {queries.device}, widths {queries.shape[1]}/{value_sets[0].shape[1]})")
    return memory_readouts(queries, memory, temperature, value_sets, max_elements, threads, rows)[0]


def _fused_readout(queries: torch.Tensor, memory: torch.Tensor, values: torch.Tensor, temperature: float,
                   threads: int | None) -> torch.Tensor | None:
    """``memory_readout`` through ``F.scaled_dot_product_attention`` restricted to the kernels that
    work in blocks (flash, memory-efficient: no full score matrix), or None where none applies
    (an older torch, values wider or narrower than the queries on the CPU kernel, a dtype it lacks).
    Several value sets are not fused: they would need a joined copy of the values."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel  # torch >= 2.3
    except ImportError:
        return None
    if values.shape[1] != queries.shape[1] or not (queries.dtype == memory.dtype == values.dtype):
        return None
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings(), sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            warnings.simplefilter("ignore")  # torch warns why each kernel does not apply before it raises
            out = F.scaled_dot_product_attention(queries[None], memory[None], values[None], scale=1.0 / temperature)[0]
    except RuntimeError:  # "No available kernel": take the blocked path
        return None
    finally:
        torch.set_num_threads(before)
    if out.requires_grad:
        return F.normalize(out, dim=1)
    return out.div_(out.norm(2, dim=1, keepdim=True).clamp_min(1e-12))  # exactly F.normalize, in place


def memory_readouts(queries: torch.Tensor, memory: torch.Tensor, temperature: float, values: list[torch.Tensor],
                    max_elements: int = READOUT_ELEMENTS, threads: int | None = None,
                    rows: int = READOUT_ROWS) -> list[torch.Tensor]:
    """``memory_readout`` for several value sets (one row per memory row each) that share the
    softmax weights, computed once: Ex-MCR reads via items and their twins in the other space.
    Each set is accumulated on its own, so no joined copy of the values is made."""
    for v in values:
        if len(v) != len(memory):
            raise ValueError(f"each value set needs one row per memory row: {len(memory)} memory rows, got {len(v)}")
    outs = [torch.zeros(len(queries), v.shape[1], dtype=v.dtype, device=v.device) for v in values]
    if not len(memory) or not len(queries):  # nothing to attend to: zero rows, as normalize(0) gives
        return outs
    rows = max(1, min(rows, max_elements, len(queries)))
    block = max(1, min(len(memory), max_elements // rows))
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        scores = torch.empty(rows, block, dtype=queries.dtype, device=queries.device)
        for start in range(0, len(queries), rows):
            _readout_rows(queries[start : start + rows] * (1.0 / temperature), memory, values, scores,
                          [o[start : start + rows] for o in outs])
    finally:
        torch.set_num_threads(before)
    return outs


# exp of scores more than 87 below the row's maximum gives float32 subnormals, which the CPU
# handles ~10-100x slower in exp and in the matmul after it (clustered memories at τ 0.01 hit
# this: 8.7 s against 0.14 s at τ 0.05). Weights under e^-60 (8.8e-27 of the largest; even 1M of
# them are far below float32's 6e-8) change no sum, so they are floored there: at -80 the
# weights were normal but their products with small value components were not (3.3 s against
# 1.5 s at 2,048 x 100k x 512; -60: 1.5 s, the same output to the bit).
EXP_FLOOR = -60.0


def _readout_rows(q: torch.Tensor, memory: torch.Tensor, values: list[torch.Tensor], scores: torch.Tensor,
                  accs: list[torch.Tensor]) -> None:
    """One chunk of queries (already divided by τ) into ``accs`` (zeros, one per value set), in place."""
    r, block = len(q), scores.shape[1]
    top = torch.full((r, 1), float("-inf"), dtype=q.dtype, device=q.device)
    total = torch.zeros(r, 1, dtype=q.dtype, device=q.device)
    for b in range(0, len(memory), block):
        mem = memory[b : b + block]
        s = scores[:r, : len(mem)]
        torch.matmul(q, mem.T, out=s)
        new_top = torch.maximum(top, s.amax(1, keepdim=True))
        s.sub_(new_top).clamp_(min=EXP_FLOOR).exp_()
        rescale = (top - new_top).exp_()  # earlier blocks were scaled by the old maximum
        for acc, v in zip(accs, values):
            acc.mul_(rescale).addmm_(s, v[b : b + block])
        total.mul_(rescale).add_(s.sum(1, keepdim=True))
        top = new_top
    for acc in accs:
        acc.div_(total)
        acc.div_(acc.norm(2, dim=1, keepdim=True).clamp_min(1e-12))  # exactly F.normalize, in place


def perturb(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Semantic completion: zero-mean Gaussian noise, then back onto the unit sphere."""
    if std <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return F.normalize(x + std * noise, dim=1)
