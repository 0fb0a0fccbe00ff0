"""Losses shared by the connector methods."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between L2-normalised rows; row i of x and of y is a positive pair."""
    logits = x @ y.T / temperature
    target = torch.arange(len(x), device=x.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def recall_at(x: torch.Tensor, y: torch.Tensor, k: int = 1) -> float:
    """Fraction of rows of x whose paired row of y is among its k most similar rows of y."""
    sims = x @ y.T
    k = min(k, len(y))
    top = sims.topk(k, dim=1).indices
    return (top == torch.arange(len(x), device=x.device).unsqueeze(1)).any(dim=1).float().mean().item()


def memory_readout(queries: torch.Tensor, memory: torch.Tensor, temperature: float, max_elements: int = 1 << 24,
                   values: torch.Tensor | None = None, threads: int | None = None) -> torch.Tensor:
    """``softmax(queries · memoryᵀ / τ) · values`` (values default to the memory itself),
    normalised, in row chunks so that no queries x memory matrix larger than
    ``max_elements`` ever exists. Each chunk's rows are normalised in place in the output,
    so the only N x d tensor is the result. ``threads``: torch threads for the call (restored
    afterwards); None keeps the caller's setting."""
    values = memory if values is None else values
    out = torch.empty(len(queries), values.shape[1], dtype=values.dtype, device=values.device)
    chunk = max(1, max_elements // max(1, len(memory)))
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        for start in range(0, len(queries), chunk):
            weights = torch.softmax((queries[start : start + chunk] @ memory.T).div_(temperature), dim=1)
            part = weights @ values  # chunk x d, small
            del weights
            # exactly F.normalize(part, dim=1), one chunk of rows at a time
            out[start : start + chunk] = part.div_(part.norm(2, dim=1, keepdim=True).clamp_min(1e-12))
    finally:
        torch.set_num_threads(before)
    return out


def perturb(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Semantic completion: zero-mean Gaussian noise, then back onto the unit sphere."""
    if std <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return F.normalize(x + std * noise, dim=1)
