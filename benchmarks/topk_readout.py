"""Top-k readout (``mcrgraph.methods.readout.topk_readout``) against the full readout
(``losses.memory_readout``, every key weighed), in the same run: seconds, speed-up and the
largest absolute error of the top-k output against the full one, per backend (exact
``mcrgraph.ranking.topk``, ``faiss-flat``, ``faiss-ivf``), per k and per temperature.

The keys are clustered unit vectors (``query.clustered_rows``: 1,000 rows per centre, as real
embeddings cluster by concept), the queries lie near random keys, and the values are the
keys themselves (a readout over via items, as C-MCR's memories and encode-time bridging read).
The FAISS indexes are built once per run over the keys and passed in (``index=``), as a caller
reading many batches over the same via items would; their build time is reported beside.

Runs alone: ``python -m benchmarks.topk_readout [--queries N] [--keys M] [--repeats R]``
writes ``results/topk-readout.{json,md}`` (``--out ''`` only prints), and is a stage of
``python -m benchmarks``."""
from __future__ import annotations

import argparse
import gc
import math
import os
import time

import torch

from mcrgraph.methods.losses import memory_readout
from mcrgraph.methods.readout import topk_readout

from .common import measured, median_time, report, threads
from .query import clustered_rows

KS = (8, 32, 128)
TEMPERATURES = (0.05, 0.01)
BACKENDS = ("exact", "faiss-flat", "faiss-ivf")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def make_data(n_queries: int, n_keys: int, d: int, seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    keys = clustered_rows(n_keys, d, max(16, n_keys // 1000), gen)
    queries = keys[torch.randint(0, n_keys, (n_queries,), generator=gen)].clone()
    queries.add_(torch.randn(queries.shape, generator=gen), alpha=0.2 / d ** 0.5)
    return queries.div_(queries.norm(dim=1, keepdim=True)), keys


def faiss_version() -> str | None:
    try:
        import faiss
    except ImportError:
        return None
    return faiss.__version__


def run(n_queries: int, n_keys: int, d: int, repeats: int, n_threads: int, ks=KS, temperatures=TEMPERATURES) -> dict:
    """Every (temperature, backend, k) timed as a median of ``repeats`` calls after one warm-up
    call, next to the full readout of the same temperature timed the same way just before."""
    from mcrgraph.ranking.index import GalleryIndex

    queries, keys = make_data(n_queries, n_keys, d)
    backends = [b for b in BACKENDS if b == "exact" or faiss_version()]
    nlist = int(math.sqrt(n_keys))  # GalleryIndex's own default (sqrt(n) cells), named here for the report
    rows, full = [], {}
    with threads(n_threads):
        indexes, build_s = {}, {}
        for b in backends[1:]:
            t0 = time.perf_counter()
            indexes[b] = GalleryIndex(keys, b, **({"nlist": nlist} if b == "faiss-ivf" else {}))
            build_s[b] = time.perf_counter() - t0
        for tau in temperatures:
            reference = memory_readout(queries, keys, tau)  # also the warm-up call
            full[tau] = median_time(lambda: memory_readout(queries, keys, tau), repeats, warmup=0)
            for k in ks:
                for b in backends:
                    def call(b=b, k=k):
                        return topk_readout(queries, keys, keys, tau, k, b, index=indexes.get(b))
                    out = call()  # warm-up, and the output whose error is reported
                    err = (out - reference).abs()
                    seconds = median_time(call, repeats, warmup=0)
                    rows.append({"temperature": tau, "k": k, "backend": b, "s": seconds, "full_s": full[tau],
                                 "speedup": full[tau] / seconds, "build_s": build_s.get(b, 0.0),
                                 "max_error": float(err.max()), "mean_error": float(err.mean()),
                                 "cos_to_full_min": float((out * reference).sum(1).min())})
                    del out, err
                    gc.collect()
    nprobe = indexes["faiss-ivf"].nprobe if "faiss-ivf" in indexes else None
    return {"n_queries": n_queries, "n_keys": n_keys, "dim": d, "clusters": max(16, n_keys // 1000), "repeats": repeats,
            "threads": n_threads, "faiss": faiss_version(), "ivf_nlist": nlist, "ivf_nprobe": nprobe,
            "full_s": {str(t): s for t, s in full.items()}, "rows": rows}


def markdown(r: dict) -> str:
    lines = [f"Top-k readout: {r['n_queries']:,} queries x {r['n_keys']:,} keys x {r['dim']} (clustered keys, "
             f"{r['clusters']:,} centres; values = keys), {r['threads']} threads, median of {r['repeats']} call(s) after a "
             f"warm-up. Baseline: the full readout (`memory_readout`, every key) at the same temperature, timed in the same run. "
             f"speed-up = full s / top-k s (FAISS index built once beforehand, its build time beside); error = largest "
             f"absolute difference of any output element from the full readout (outputs are unit rows). "
             f"faiss-ivf: {r['ivf_nlist']} cells, {r['ivf_nprobe']} probes.", "",
             "| τ | k | backend | top-k s | full s | speed-up | build s | max error | mean error | min cos to full |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        lines.append(f"| {x['temperature']} | {x['k']} | {x['backend']} | {x['s']:.2f} | {x['full_s']:.2f} | "
                     f"**{x['speedup']:.1f}x** | {x['build_s']:.1f} | {x['max_error']:.2e} | {x['mean_error']:.2e} | "
                     f"{x['cos_to_full_min']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.topk_readout", description="the top-k readout stage alone")
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=os.path.join(RESULTS, "topk-readout"), help="path stem of the .json and .md written; '' prints only")
    args = ap.parse_args(argv)
    r = measured(lambda: run(args.queries, args.keys, args.dim, args.repeats, args.threads))
    info, wall = r["machine"], r["runtime_s"]
    head = (f"# Top-k readout (`python -m benchmarks.topk_readout`)\n\n{info['cpu_model']}, {info['cores']} cores, "
            f"torch {info['torch']}, faiss-cpu {r['faiss']}, {info['date']}; {wall:.0f} s. Load: `uptime` before: "
            f"{r['uptime_before']}; after: {r['uptime_after']}; other processes kept {r['other_cores_busy']:.2f} cores "
            "busy on average during the run (from /proc/stat minus this run's CPU time).\n\n")
    report(r, head + markdown(r), args.out)


if __name__ == "__main__":
    main()
