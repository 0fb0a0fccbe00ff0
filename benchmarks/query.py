"""Top-k queries against a gallery of unit vectors: the plain ``torch.topk(gallery @ q, k)``
as the baseline, next to ``mcrgraph.ranking.topk`` (exact float32, chunked), the same over a gallery
stored in bfloat16 and in float16, and batches of queries (one pass over the gallery for the
whole batch; per-query time = batch time / batch size). Every variant is timed in the same
run as its baseline; ratio = variant / baseline.

Also runnable alone, for the query stage at full size without the rest of the suite:
``python -m benchmarks.query [--gallery 1000000] [--repeats 11]`` prints a Markdown table."""
from __future__ import annotations

import argparse
import gc

import torch

from mcrgraph.ranking.topk import topk

from .common import median_time, threads, unit_rows

BATCHES = (8, 64)
REDUCED = {"bf16": torch.bfloat16, "fp16": torch.float16}


def topk_full(gallery: torch.Tensor, q: torch.Tensor, k: int):
    """The baseline: one matrix-vector product and torch.topk."""
    return torch.topk(gallery @ q, k)


def topk_full_batch(gallery: torch.Tensor, qs: torch.Tensor, k: int):
    """The batched baseline: the whole (batch x gallery) score matrix, then torch.topk."""
    return torch.topk(qs @ gallery.T, k, dim=1)


def recall(found: torch.Tensor, exact: torch.Tensor) -> float:
    return sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, exact)) / exact.numel()


def run(n_gallery: int, d: int, k: int, thread_counts: tuple[int, ...], repeats: int, batches: tuple[int, ...] = BATCHES,
        batch_thread_counts: tuple[int, ...] | None = None) -> dict:
    """Every variant at every count of ``thread_counts``; the batches (a few seconds per call
    at 1M rows) only at ``batch_thread_counts`` (default: the largest count) and with half the
    repeats (at least 3), to keep the suite's query stage under a minute at full size."""
    batch_thread_counts = batch_thread_counts or (max(thread_counts),)
    batch_repeats = max(3, repeats // 2)
    gen = torch.Generator().manual_seed(3)
    gallery = unit_rows(n_gallery, d, gen)
    qs = unit_rows(max(batches), d, gen)
    q = qs[0]
    stored = {name: gallery.to(dt) for name, dt in REDUCED.items()}  # stored once, as an index would be

    exact_v, exact_i = topk(qs, gallery, k)
    same = torch.equal(topk_full(gallery, q, k).indices, topk(q[None], gallery, k)[1][0])
    same_batch = torch.equal(topk_full_batch(gallery, qs, k).indices, exact_i)
    recalls = {}
    for name, g in stored.items():
        _, i = topk(qs, g, k)
        recalls[name] = {"recall_at_k": recall(i, exact_i), "top1": float((i[:, 0] == exact_i[:, 0]).float().mean()),
                         "queries": len(qs)}

    def ms(fn, n_queries=1):
        if n_queries == 1:
            return 1e3 * median_time(fn, repeats, warmup=2)
        return 1e3 * median_time(fn, batch_repeats, warmup=1) / n_queries

    rows = {}
    for t in thread_counts:
        with threads(t):
            r = {"full_ms": ms(lambda: topk_full(gallery, q, k)),
                 "chunked_ms": ms(lambda: topk(q[None], gallery, k))}  # mcrgraph.ranking.topk, exact float32
            for name, g in stored.items():
                r[f"{name}_ms"] = ms(lambda g=g: topk(q[None], g, k))
            for b in batches if t in batch_thread_counts else ():
                qb = qs[:b]
                r[f"full_batch{b}_per_query_ms"] = ms(lambda qb=qb: topk_full_batch(gallery, qb, k), b)
                r[f"batch{b}_per_query_ms"] = ms(lambda qb=qb: topk(qb, gallery, k), b)
                r[f"bf16_batch{b}_per_query_ms"] = ms(lambda qb=qb: topk(qb, stored["bf16"], k), b)
            rows[t] = r
            gc.collect()
    stored.clear()  # free the half-precision copies before FAISS builds its own
    gc.collect()
    with threads(max(thread_counts)):
        index = faiss_rows(gallery, qs, k, repeats, exact_i, ms)
    return {"n_gallery": n_gallery, "dim": d, "k": k, "repeats": repeats, "batch_repeats": batch_repeats, "same_result": same,
            "same_result_batch": same_batch, "batches": list(batches), "recall": recalls,
            "gallery_bytes": n_gallery * d * 4, "by_threads": rows, "index": index, "index_threads": max(thread_counts)}


def clustered_rows(n: int, d: int, clusters: int, gen: torch.Generator) -> torch.Tensor:
    """Unit rows around ``clusters`` random centres (noise of norm about 0.4): embeddings of real
    data cluster by concept; uniform random rows are the worst case for an inverted-list index."""
    centres = unit_rows(clusters, d, gen)
    x = centres[torch.randint(0, clusters, (n,), generator=gen)]
    x.add_(torch.randn(n, d, generator=gen), alpha=0.4 / d ** 0.5)
    return x.div_(x.norm(dim=1, keepdim=True))


BOTH = ("uniform random", "clustered")
# (kind, build options, search-time settings, galleries): HNSW only on the clustered gallery,
# because inserting 1M rows into its graph takes minutes (100k rows: 25 s here). IVF-PQ is built
# once with rerank, which keeps the float32 rows; rerank=None searches without them.
INDEX_RUNS = [("faiss-flat", {}, ({},), ("uniform random",)),
              ("faiss-ivf", {}, ({"nprobe": 16}, {"nprobe": 64}), BOTH),
              ("faiss-ivfpq", {"rerank": 100}, ({"nprobe": 16, "rerank": None}, {"nprobe": 64, "rerank": None},
                                                {"nprobe": 16, "rerank": 100}, {"nprobe": 16, "rerank": 1000}), BOTH),
              ("faiss-sq8", {}, ({},), BOTH),
              ("faiss-hnsw", {}, ({"ef_search": 128}, {"ef_search": 512}), ("clustered",))]


def faiss_rows(gallery: torch.Tensor, qs: torch.Tensor, k: int, repeats: int, exact_i: torch.Tensor, ms) -> list[dict]:
    """GalleryIndex kinds next to the exact scan: build seconds, ms per single query, recall@k on
    the batch of queries; IVF also on a clustered gallery of the same size. Empty without FAISS."""
    import time

    from mcrgraph.ranking.index import GalleryIndex

    try:
        import faiss  # noqa: F401
    except ImportError:
        return []
    out = []
    gen = torch.Generator().manual_seed(5)
    galleries = [("uniform random", gallery, qs, exact_i)]
    clustered = clustered_rows(len(gallery), gallery.shape[1], max(16, len(gallery) // 1000), gen)
    cq = clustered[torch.randint(0, len(clustered), (len(qs),), generator=gen)].clone()
    cq.add_(torch.randn(cq.shape, generator=gen), alpha=0.2 / gallery.shape[1] ** 0.5).div_(cq.norm(dim=1, keepdim=True))
    galleries.append(("clustered", clustered, cq, topk(cq, clustered, k)[1]))
    for label, g, q, exact in galleries:
        exact_ms = ms(lambda g=g, q=q: topk(q[:1], g, k))
        for kind, build, settings, on in INDEX_RUNS:
            if label not in on:
                continue
            t0 = time.perf_counter()
            index = GalleryIndex(g, kind, **build)
            build_s = time.perf_counter() - t0
            for setting in settings:
                for knob, value in setting.items():
                    setattr(index, knob, value)
                found = index.search(q, k)[1]
                shown = ", ".join(f"{knob}={value}" for knob, value in setting.items() if value is not None) or "-"
                out.append({"gallery": label, "kind": kind, "setting": shown, "build_s": build_s,
                            "ms": ms(lambda q=q, index=index: index.search(q[:1], k)), "exact_ms": exact_ms,
                            "recall_at_k": recall(found, exact), "queries": len(q)})
            del index
        gc.collect()
    return out


def variants(r: dict) -> list[tuple[str, str, str, float, str]]:
    """(threads, variant, baseline, per-query ms, baseline key) rows of one run, for tables."""
    out = []
    for t, x in r["by_threads"].items():
        out.append((t, "torch.topk(gallery @ q)", "target 50 ms", x["full_ms"], None))
        out.append((t, "mcrgraph.ranking.topk float32 (exact)", "torch.topk(gallery @ q)", x["chunked_ms"], "full_ms"))
        for name in REDUCED:
            out.append((t, f"mcrgraph.ranking.topk, {name} gallery", "torch.topk(gallery @ q)", x[f"{name}_ms"], "full_ms"))
        for b in r["batches"] if f"batch{r['batches'][0]}_per_query_ms" in x else ():
            out.append((t, f"torch.topk(Q @ gallery.T), Q={b}, per query", "torch.topk(gallery @ q)", x[f"full_batch{b}_per_query_ms"], "full_ms"))
            out.append((t, f"mcrgraph.ranking.topk float32, Q={b}, per query", "torch.topk(gallery @ q)", x[f"batch{b}_per_query_ms"], "full_ms"))
            out.append((t, f"mcrgraph.ranking.topk bf16 gallery, Q={b}, per query", "torch.topk(gallery @ q)", x[f"bf16_batch{b}_per_query_ms"], "full_ms"))
    return out


def _setting(row: dict) -> str:
    if "setting" in row:
        return row["setting"]
    return f"nprobe={row['nprobe']}" if row.get("nprobe") else "-"  # reports from before the setting column


def markdown(r: dict, target_ms: float = 50.0) -> str:
    lines = [f"Query: {r['n_gallery']:,} x {r['dim']} gallery ({r['gallery_bytes'] / 2**30:.2f} GiB float32), top-{r['k']}, "
             f"median of {r['repeats']} (batches: {r['batch_repeats']}); ratio = ms / torch.topk(gallery @ q) ms at the same thread count.", "",
             "| threads | variant | ms per query | ratio | under 50 ms |", "|---|---|---|---|---|"]
    for t, name, _, value, key in variants(r):
        base = r["by_threads"][t]["full_ms"]
        ratio = f"{value / base:.3f}" if key else "1"
        lines.append(f"| {t} | {name} | {value:.1f} | {ratio} | {value < target_ms} |")
    lines += ["", f"Same top-{r['k']} as torch.topk: one query {r['same_result']}, batch {r['same_result_batch']}.", ""]
    lines += ["| gallery | recall@%d vs exact float32 | top-1 agrees | queries |" % r["k"], "|---|---|---|---|"]
    lines += [f"| {n} | {x['recall_at_k']:.4f} | {x['top1']:.3f} | {x['queries']} |" for n, x in r["recall"].items()]
    if r.get("index"):
        lines += ["", f"FAISS (`mcrgraph.ranking.index.GalleryIndex`, faiss-cpu) at {r['index_threads']} threads, one query; baseline: "
                  f"exact `mcrgraph.ranking.topk` float32 on the same gallery; recall@{r['k']} against it over {r['index'][0]['queries']} queries.", "",
                  "| gallery | index | setting | build s | ms per query | exact ms | ratio | recall@%d |" % r["k"], "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {x['gallery']} | {x['kind']} | {_setting(x)} | {x['build_s']:.1f} | {x['ms']:.2f} | {x['exact_ms']:.1f} | "
                  f"{x['ms'] / x['exact_ms']:.3f} | {x['recall_at_k']:.3f} |" for x in r["index"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import os

    from .common import machine

    ap = argparse.ArgumentParser(prog="python -m benchmarks.query", description="the query stage alone")
    ap.add_argument("--gallery", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args(argv)
    info = machine()
    print(f"{info['cpu_model']}, {info['cores']} cores, torch {info['torch']}, {info['date']}\n")
    counts = tuple(sorted({1, 2, os.cpu_count() or 1}))
    print(markdown(run(args.gallery, args.dim, 10, counts, args.repeats, batch_thread_counts=counts)))


if __name__ == "__main__":
    main()
