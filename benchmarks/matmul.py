"""Matmul roofline: fp32 GFLOP/s of torch.mm on the shapes of a C-MCR training step, and on
those of the memory readout precompute."""
from __future__ import annotations

import math
import time

import torch

from mcrgraph.methods.losses import READOUT_ELEMENTS, READOUT_ROWS

from .common import median_time, threads

WARMUP_S = 0.5  # warm-up by time: a few ms of calls did not always wake the second core
SAMPLE_S = 0.05  # each timed sample repeats the product for about this long


def step_shapes(batch: int, d: int, hidden: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of the products in one step: layer-1 forward, layer-2 forward, a weight
    gradient (hidden x batch @ batch x d) and the InfoNCE logits."""
    return [(batch, d, hidden), (batch, hidden, d), (hidden, batch, d), (batch, d, batch)]


def readout_shapes(d: int, n_mem: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of the readout's two products per block: scores, then weights @ memory block."""
    block = min(n_mem, READOUT_ELEMENTS // READOUT_ROWS)
    return [(READOUT_ROWS, d, block), (READOUT_ROWS, block, d)]


def gflops(m: int, k: int, n: int, n_threads: int, repeats: int) -> float:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    with threads(n_threads):
        calls, end = 0, time.perf_counter() + WARMUP_S
        while time.perf_counter() < end:
            torch.mm(a, b)
            calls += 1
        per_sample = max(1, math.ceil(calls * SAMPLE_S / WARMUP_S))
        seconds = median_time(lambda: [torch.mm(a, b) for _ in range(per_sample)], repeats, warmup=0) / per_sample
    return 2 * m * k * n / seconds / 1e9


def run(batch: int, d: int, hidden: int, n_mem: int, thread_counts: tuple[int, ...], repeats: int) -> dict:
    def measure(shapes, use):
        return [{"shape": "x".join(map(str, shape)), "use": use,
                 **{f"gflops_{t}t": gflops(*shape, t, repeats) for t in thread_counts}} for shape in shapes]

    step, readout = measure(step_shapes(batch, d, hidden), "step"), measure(readout_shapes(d, n_mem), "readout")
    best = {t: max(r[f"gflops_{t}t"] for r in step) for t in thread_counts}
    best_readout = {t: max(r[f"gflops_{t}t"] for r in readout) for t in thread_counts}
    return {"shapes": step + readout, "best": best, "best_readout": best_readout, "repeats": repeats,
            "sample_s": SAMPLE_S, "warmup_s": WARMUP_S}
