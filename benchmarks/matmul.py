"""Matmul roofline: GFLOP/s of torch.mm on the shapes of a C-MCR training step (fp32, and
bf16 for the step under ``precision="bf16"``), and on those of the memory readout precompute."""
from __future__ import annotations

import math
import time
from typing import Callable

import torch

from mcrgraph.methods.losses import READOUT_ELEMENTS, READOUT_ROWS

from .common import median_time, threads

WARMUP_S = 0.5  # warm-up by time: a few ms of calls did not always wake the second core
SAMPLE_S = 0.05  # each timed sample repeats the product for about this long


def readout_shapes(d: int, n_mem: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of the readout's two products per block: scores, then weights @ memory block."""
    block = min(n_mem, READOUT_ELEMENTS // READOUT_ROWS)
    return [(READOUT_ROWS, d, block), (READOUT_ROWS, block, d)]


def gflops(m: int, k: int, n: int, n_threads: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen).to(dtype), torch.randn(k, n, generator=gen).to(dtype)
    with threads(n_threads):
        calls, end = 0, time.perf_counter() + WARMUP_S
        while time.perf_counter() < end:
            torch.mm(a, b)
            calls += 1
        per_sample = max(1, math.ceil(calls * SAMPLE_S / WARMUP_S))
        seconds = median_time(lambda: [torch.mm(a, b) for _ in range(per_sample)], repeats, warmup=0) / per_sample
    return 2 * m * k * n / seconds / 1e9


def shape_key(shape: tuple[int, int, int]) -> str:
    return "x".join(map(str, shape))


def run(step_shapes: list[tuple[int, int, int]], d: int, n_mem: int, thread_counts: tuple[int, ...], repeats: int) -> dict:
    """Rates of each shape at each thread count; ``best``: the fastest fp32 step shape, the
    strict roofline; ``by_shape``: every shape's rates, for an ideal with each product at its own."""
    def measure(shapes, use, dtypes):
        return [{"shape": shape_key(shape), "use": use,
                 **{f"gflops_{t}t{suffix}": gflops(*shape, t, repeats, dtype)
                    for suffix, dtype in dtypes.items() for t in thread_counts}} for shape in shapes]

    both = {"": torch.float32, "_bf16": torch.bfloat16}
    step = measure(step_shapes, "step", both)
    readout = measure(readout_shapes(d, n_mem), "readout", {"": torch.float32})
    best = {t: max(r[f"gflops_{t}t"] for r in step) for t in thread_counts}
    best_readout = {t: max(r[f"gflops_{t}t"] for r in readout) for t in thread_counts}
    return {"shapes": step + readout, "best": best, "best_readout": best_readout, "repeats": repeats,
            "sample_s": SAMPLE_S, "warmup_s": WARMUP_S}


def rate_of(result: dict, n_threads: int, dtype: str = "") -> Callable[[tuple[int, int, int]], float]:
    """``shape -> GFLOP/s`` from a ``run`` result, for ``training.ideal_step_s``."""
    rates = {r["shape"]: r[f"gflops_{n_threads}t{dtype}"] for r in result["shapes"] if r["use"] == "step"}
    return lambda shape: rates[shape_key(shape)]
