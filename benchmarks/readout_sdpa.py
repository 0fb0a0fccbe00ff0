"""The memory readout ``normalize(softmax(Q·Mᵀ/τ)·M)`` two ways, in the same run: the blocked
online-softmax path (``memory_readout(fused=False)``, the baseline) and torch's fused
``scaled_dot_product_attention`` restricted to its flash / memory-efficient kernels
(``fused=True``, opt-in: the blocked path is the default). Calls alternate (blocked, fused, blocked, ...)
so both see the machine in the same state; each is compared with the roofline: the readout's
matmul FLOPs (scores and weights @ memory, 4·n·m·d) over the best fp32 GFLOP/s of its own
product shapes, measured here at the same thread count.

Also runs alone: ``python -m benchmarks.readout_sdpa [--queries 8192 --memory 100000]``
prints a Markdown table (benchmarks/results/readout-sdpa.md holds one)."""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from mcrgraph.methods.losses import memory_readout

from . import matmul
from .common import figure, threads, unit_rows

TAU = 0.01  # C-MCR's memory temperature default order of magnitude
SIZES = {"quick": dict(n_queries=2048, n_memory=16_384, dim=512, repeats=2),
         "full": dict(n_queries=8192, n_memory=100_000, dim=512, repeats=3)}


def run(n_queries: int, n_memory: int, dim: int, repeats: int, n_threads: int | None = None) -> dict:
    n_threads = n_threads or torch.get_num_threads()
    gen = torch.Generator().manual_seed(0)
    q, mem = unit_rows(n_queries, dim, gen), unit_rows(n_memory, dim, gen)
    rates: list[float] = []  # the roofline is sampled between the rounds too; the best sample counts

    def roofline() -> None:
        rates.extend(matmul.gflops(*shape, n_threads, 5) for shape in matmul.readout_shapes(dim, n_memory))

    times: dict[str, list[float]] = {"blocked": [], "fused": []}
    outs = {}
    with threads(n_threads):
        memory_readout(q, mem, TAU, fused=False), memory_readout(q, mem, TAU, fused=True)  # warm-up at full size
        for _ in range(repeats):
            roofline()
            for name, fused in (("blocked", False), ("fused", True)):
                t0 = time.perf_counter()
                outs[name] = memory_readout(q, mem, TAU, fused=fused)
                times[name].append(time.perf_counter() - t0)
        roofline()
    ideal_s = 4 * n_queries * n_memory * dim / (max(rates) * 1e9)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"n_queries": n_queries, "n_memory": n_memory, "dim": dim, "repeats": repeats, "threads": n_threads,
            "roofline_gflops": max(rates), "ideal_s": ideal_s, "blocked_s": med["blocked"], "fused_s": med["fused"],
            "blocked_all_s": times["blocked"], "fused_all_s": times["fused"],
            "max_abs_diff": (outs["blocked"] - outs["fused"]).abs().max().item()}


def figures(r: dict) -> list[dict]:
    size = f"{r['n_queries']:,} x {r['n_memory']:,} x {r['dim']}, {r['threads']} threads"
    return [
        figure(f"memory readout, fused SDPA ({size})", r["fused_s"], "s", "blocked online softmax (same run)", r["blocked_s"],
               f"ratio < 1: SDPA faster; max |diff| {r['max_abs_diff']:.1e}"),
        figure("memory readout roofline: ideal / fused SDPA", r["ideal_s"], "s", "fused SDPA", r["fused_s"],
               f"ratio = fraction of the roofline ({r['roofline_gflops']:.0f} GFLOP/s) reached"),
        figure("memory readout roofline: ideal / blocked", r["ideal_s"], "s", "blocked online softmax", r["blocked_s"],
               "ratio = fraction of the roofline reached"),
    ]


def markdown(r: dict) -> str:
    lines = [f"Memory readout, {r['n_queries']:,} queries x {r['n_memory']:,} memories x {r['dim']}, τ = {TAU}, "
             f"{r['threads']} torch threads, median of {r['repeats']} alternating calls each after one untimed call of each. "
             f"Roofline: the readout's matmul FLOPs (4·n·m·d) / {r['roofline_gflops']:.1f} GFLOP/s (the best fp32 torch.mm "
             f"sample on its two product shapes, sampled before, between and after the rounds) = {r['ideal_s']:.2f} s.", "",
             "| variant | seconds (median) | every call | ratio to blocked | fraction of roofline |", "|---|---|---|---|---|"]
    for name, label in (("blocked", "blocked online softmax (`fused=False`, baseline)"),
                        ("fused", "`F.scaled_dot_product_attention`, flash / memory-efficient only (`fused=True`)")):
        s = r[f"{name}_s"]
        lines.append(f"| {label} | {s:.2f} | {', '.join(f'{x:.2f}' for x in r[f'{name}_all_s'])} | "
                     f"{s / r['blocked_s']:.3f} | {r['ideal_s'] / s:.3f} |")
    lines += ["", f"Max |difference| between the two readouts: {r['max_abs_diff']:.2e}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from .common import machine

    ap = argparse.ArgumentParser(prog="python -m benchmarks.readout_sdpa", description="the readout stage alone")
    ap.add_argument("--queries", type=int, default=SIZES["full"]["n_queries"])
    ap.add_argument("--memory", type=int, default=SIZES["full"]["n_memory"])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=SIZES["full"]["repeats"])
    args = ap.parse_args(argv)
    info = machine()
    print(f"{info['cpu_model']}, {info['cores']} cores, torch {info['torch']}, {info['date']}\n")
    print(markdown(run(args.queries, args.memory, args.dim, args.repeats)))


if __name__ == "__main__":
    main()
