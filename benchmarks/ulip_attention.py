"""ULIP PointBERT's attention block two ways, in the same run: the softmax written out as ULIP's
code has it (the baseline) and the plugin's ``Attention``, which calls torch's fused
``scaled_dot_product_attention``, on the same weights. Calls alternate; the ratio is per block.

Also runs alone: ``python -m benchmarks.ulip_attention`` prints a Markdown table
(benchmarks/results/ulip-attention.md holds one)."""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from .common import figure, threads

SIZES = {"quick": dict(batch=4, tokens=513, dim=384, heads=6, repeats=5),
         "full": dict(batch=16, tokens=513, dim=384, heads=6, repeats=11)}  # ULIP-2 PointBERT: 512 groups + cls


def written_out(attn, x: torch.Tensor) -> torch.Tensor:
    """PointBERT's Attention.forward before the plugin used SDPA."""
    B, N, C = x.shape
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, C // attn.num_heads).permute(2, 0, 3, 1, 4)
    weights = ((qkv[0] @ qkv[1].transpose(-2, -1)) * attn.scale).softmax(dim=-1)
    return attn.proj((weights @ qkv[2]).transpose(1, 2).reshape(B, N, C))


def run(batch: int, tokens: int, dim: int, heads: int, repeats: int, n_threads: int | None = None) -> dict:
    from mcrgraph_ulip.model import Attention

    n_threads = n_threads or torch.get_num_threads()
    torch.manual_seed(0)
    attn = Attention(dim, heads).eval()
    x = torch.randn(batch, tokens, dim)
    times: dict[str, list[float]] = {"written": [], "sdpa": []}
    with threads(n_threads), torch.inference_mode():
        written_out(attn, x), attn(x)  # warm-up
        for _ in range(repeats):
            for name, fn in (("written", lambda: written_out(attn, x)), ("sdpa", lambda: attn(x))):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        diff = (written_out(attn, x) - attn(x)).abs().max().item()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"batch": batch, "tokens": tokens, "dim": dim, "heads": heads, "repeats": repeats, "threads": n_threads,
            "written_ms": med["written"] * 1e3, "sdpa_ms": med["sdpa"] * 1e3, "max_abs_diff": diff}


def figures(r: dict) -> list[dict]:
    return [figure(f"ULIP PointBERT attention block, SDPA (batch {r['batch']}, {r['tokens']} tokens, {r['threads']} threads)",
                   r["sdpa_ms"], "ms", "softmax written out (same run)", r["written_ms"],
                   f"ratio < 1: SDPA faster; max |diff| {r['max_abs_diff']:.1e}")]


def markdown(r: dict) -> str:
    return "\n".join([
        f"ULIP PointBERT attention block (width {r['dim']}, {r['heads']} heads), batch {r['batch']} x {r['tokens']} tokens, "
        f"{r['threads']} torch threads, median of {r['repeats']} alternating calls each, inference mode.", "",
        "| variant | ms per block | ratio |", "|---|---|---|",
        f"| softmax written out (ULIP's code, baseline) | {r['written_ms']:.1f} | 1 |",
        f"| `F.scaled_dot_product_attention` (the plugin) | {r['sdpa_ms']:.1f} | {r['sdpa_ms'] / r['written_ms']:.3f} |", "",
        f"Max |difference| between the two outputs: {r['max_abs_diff']:.1e}.", ""])


def main(argv: list[str] | None = None) -> None:
    from .common import machine

    ap = argparse.ArgumentParser(prog="python -m benchmarks.ulip_attention", description="the ULIP attention stage alone")
    ap.add_argument("--repeats", type=int, default=SIZES["full"]["repeats"])
    args = ap.parse_args(argv)
    info = machine()
    print(f"{info['cpu_model']}, {info['cores']} cores, torch {info['torch']}, {info['date']}\n")
    print(markdown(run(**{**SIZES["full"], "repeats": args.repeats})))


if __name__ == "__main__":
    main()
