"""``python -m benchmarks [--quick]``: run every benchmark and write results/report.{json,md}."""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

from mcrgraph.methods import cmcr, loop

from . import extraction, large, matmul, query, topk_readout, training
from . import readout_sdpa, ulip_attention
from .common import figure, machine, machine_busy_s, own_cpu_s, write_atomic
from .report import render

SIZES = {
    "quick": dict(n_via=8192, n_mem=8192, dim=512, batch=512, epochs=1, baseline_steps=5, matmul_repeats=5,
                  query_gallery=100_000, query_repeats=5, profile_steps=8, threads_steps=12, paired_blocks=2,
                  large_candidates=[20_000], extraction_images=32, extraction_repeats=1, readout_queries=500,
                  readout_keys=10_000, budget_s=150),
    "full": dict(n_via=100_000, n_mem=100_000, dim=512, batch=512, epochs=1, baseline_steps=20, matmul_repeats=10,
                 query_gallery=1_000_000, query_repeats=11, profile_steps=30, threads_steps=40, paired_blocks=8,
                 large_candidates=[1_000_000, 750_000, 500_000, 300_000, 200_000],
                 extraction_images=96, extraction_repeats=5, readout_queries=2_000, readout_keys=100_000,
                 budget_s=80 * 60),
}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
TOP_K = 10
QUERY_TARGET_MS = 50.0
MACHINE_THREADS = os.cpu_count() or 1


def log(msg: str) -> None:
    print(f"[benchmarks] {msg}", file=sys.stderr, flush=True)


def pick_large_size(candidates: list[int], n_mem: int, seconds_per_pair: float, samples_per_s: float,
                    remaining_s: float) -> tuple[int, str]:
    """Largest via count whose estimated ``train`` time (readout at the measured precompute rate,
    one epoch at the measured throughput) fits the time left; the smallest if none does."""
    for n in candidates:
        estimate = 1.15 * (n * n_mem * seconds_per_pair + n / samples_per_s) + 30
        if estimate <= remaining_s:
            why = "the largest size tried" if n == candidates[0] else f"larger sizes ({num_list(candidates, n)}) were estimated not to fit the time budget"
            return n, f"Size chosen from the first run's precompute rate and throughput (estimate {estimate:.0f} s, {remaining_s:.0f} s left); {why}."
    return candidates[-1], f"No candidate was estimated to fit the {remaining_s:.0f} s left; ran the smallest."


def num_list(candidates: list[int], n: int) -> str:
    return ", ".join(f"{c:,}" for c in candidates if c > n)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke test (under 2 minutes)")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    s = SIZES[mode]
    start = time.perf_counter()
    stage_s: dict[str, float] = {}
    others: dict[str, float] = {}  # mean cores kept busy by other processes during each stage
    details: dict = {}
    info = machine()
    cfg = cmcr.Config(epochs=s["epochs"], batch_size=s["batch"])
    # resolve threads=None the way mcrgraph does, so the baseline runs at the same count
    cfg = cfg.model_copy(update={"threads": loop.step_threads(cfg, s["batch"], s["dim"]) or MACHINE_THREADS})
    step_threads = cfg.threads
    thread_counts = tuple(sorted({1, MACHINE_THREADS, 2}))
    log(f"{mode} run on {info['cpu_model']} ({info['cores']} cores)")

    def stage(name: str, fn):
        log(f"{name} ...")
        t0, busy0, own0 = time.perf_counter(), machine_busy_s(), own_cpu_s()
        result = fn()
        stage_s[name] = time.perf_counter() - t0
        others[name] = max(0.0, (machine_busy_s() - busy0) - (own_cpu_s() - own0)) / stage_s[name]
        gc.collect()
        log(f"{name} done in {stage_s[name]:.1f} s (other processes kept {others[name]:.2f} cores busy)")
        return result

    products = training.step_products(cfg, s["batch"], s["dim"], s["dim"])
    shapes = list(dict.fromkeys(p["shape"] for p in products))
    details["matmul"] = stage("matmul", lambda: matmul.run(shapes, s["dim"], s["n_mem"], thread_counts, s["matmul_repeats"]))
    details["query"] = stage("query", lambda: query.run(s["query_gallery"], s["dim"], TOP_K, thread_counts, s["query_repeats"]))
    details["extraction"] = stage("extraction", lambda: extraction.run(s["extraction_images"], s["extraction_repeats"]))
    details["topk_readout"] = stage("topk_readout", lambda: topk_readout.run(
        s["readout_queries"], s["readout_keys"], s["dim"], 1, MACHINE_THREADS))
    details["threads_compare"] = stage("threads_compare", lambda: training.compare_steps(
        cfg, s["threads_steps"], s["dim"], {str(t): {"threads": t} for t in thread_counts}))
    details["precision_compare"] = stage("precision_compare", lambda: training.compare_steps(
        cfg, s["threads_steps"], s["dim"], {"fp32": {}, "bf16": {"precision": "bf16"}}))
    details["step_vs_matmuls"] = stage("step_vs_matmuls", lambda: training.step_vs_matmuls(
        cfg, products, s["threads_steps"], s["dim"], s["paired_blocks"]))
    details["profile"] = stage("profile", lambda: training.profile_steps(cfg, s["profile_steps"], s["dim"]))
    details["readout_sdpa"] = stage("readout_sdpa", lambda: readout_sdpa.run(**readout_sdpa.SIZES[mode], n_threads=MACHINE_THREADS))
    details["ulip_attention"] = stage("ulip_attention", lambda: ulip_attention.run(**ulip_attention.SIZES[mode], n_threads=MACHINE_THREADS))

    def train():
        data = training.make_data(s["n_via"], s["n_mem"], s["dim"])
        warm = training.make_data(4 * s["batch"], 1024, s["dim"], seed=5)
        training.run_cmcr(warm, cfg, caller_threads=MACHINE_THREADS)  # warm-up, untimed
        result = training.run_cmcr(data, cfg, caller_threads=MACHINE_THREADS)
        baseline = training.baseline_steps(data, cfg, s["baseline_steps"])
        return result, baseline

    details["train"], details["baseline"] = stage("train+baseline", train)
    t, b = details["train"], details["baseline"]
    details["flops"] = training.step_flops(products)

    seconds_per_pair = t["precompute_s"] / (s["n_via"] * s["n_mem"])  # both sides' readouts
    remaining = 0.88 * s["budget_s"] - (time.perf_counter() - start)
    n_large, choice = pick_large_size(s["large_candidates"], s["n_mem"], seconds_per_pair, t["samples_per_s"], remaining)
    log(f"large run: {n_large:,} pairs. {choice}")
    details["large"] = stage("large", lambda: large.measure(n_large, s["n_mem"], s["dim"], MACHINE_THREADS, cfg.model_dump_json()))
    details["large"]["choice"] = choice

    # ---- figures, each with its same-run baseline ----
    best = details["matmul"]["best"]
    fl = details["flops"]["total"]
    ideal_step = fl / (best[step_threads] * 1e9)
    ideal_by_shape = training.ideal_step_s(products, matmul.rate_of(details["matmul"], step_threads))
    ideal_bf16 = training.ideal_step_s(products, matmul.rate_of(details["matmul"], step_threads, "_bf16"))
    pc = details["precision_compare"]["step_median_s"]
    best_readout = details["matmul"]["best_readout"][MACHINE_THREADS] * 1e9

    def readout_ideal(n_via: int) -> float:
        return 2 * training.readout_flops(n_via, s["n_mem"], s["dim"]) / best_readout
    base_epoch = b["step_median_s"] * t["steps"] / t["epochs"]
    default_epochs = cmcr.Config().epochs
    q = details["query"]["by_threads"]
    lg = details["large"]
    tc = details["threads_compare"]["step_median_s"]
    sv = details["step_vs_matmuls"]
    figures = [
        figure(f"fp32 matmul, best step shape, {MACHINE_THREADS} threads", best[MACHINE_THREADS], "GFLOP/s",
               "same, 1 thread", best[1], "thread scaling of the roofline"),
        figure(f"C-MCR training throughput ({t['step_threads']} thread steps)", t["samples_per_s"], "samples/s",
               "baseline: readout recomputed per step", b["batch"] / b["step_median_s"], "ratio = speed-up over the baseline"),
        figure("C-MCR step time (median)", t["step_median_s"] * 1e3, "ms",
               "baseline step (median)", b["step_median_s"] * 1e3, "ratio = mcrgraph / baseline"),
        figure(f"C-MCR epoch ({t['n_train']:,} pairs, {t['steps']} steps; excl. precompute)", t["epoch_s"], "s",
               "baseline epoch (EXTRAPOLATED: steps x median step)", base_epoch, "measured: 1 epoch"),
        figure("C-MCR readout precompute, both sides", t["precompute_s"], "s",
               f"ideal: readout FLOPs / {MACHINE_THREADS}-thread GFLOP/s of its shapes", readout_ideal(s["n_via"]),
               f"ratio = measured / ideal; ran at {t['caller_threads']} threads"),
        figure(f"C-MCR precompute + {default_epochs} epochs (EXTRAPOLATED)", t["precompute_s"] + default_epochs * t["epoch_s"], "s",
               f"baseline {default_epochs} epochs (EXTRAPOLATED)", default_epochs * base_epoch,
               f"{default_epochs} = C-MCR config default epochs"),
        figure("ideal step time (matmul FLOPs / roofline)", ideal_step * 1e3, "ms",
               "measured C-MCR step (median)", t["step_median_s"] * 1e3, "ratio = fraction of ideal reached"),
        figure("ideal step time, each product at its own shape's rate", ideal_by_shape * 1e3, "ms",
               "measured C-MCR step (median)", t["step_median_s"] * 1e3, "ratio = fraction of ideal reached"),
        figure(f"C-MCR step, alternating with its matmuls alone ({len(sv['pairs'])} pairs, median)", sv["step_median_s"] * 1e3, "ms",
               "the same step's matmuls alone, back to back (median)", sv["matmuls_median_s"] * 1e3,
               f"pair ratios {sv['ratio_min']:.2f}-{sv['ratio_max']:.2f}x, median {sv['ratio_median']:.2f}x (target 1.25x)"),
        figure(f"C-MCR step at {MACHINE_THREADS} threads (median)", tc[str(MACHINE_THREADS)] * 1e3, "ms",
               "same at 1 thread", tc["1"] * 1e3, "real cmcr.train steps; ratio < 1: more threads faster"),
        figure("C-MCR step, precision=bf16 (median)", pc["bf16"] * 1e3, "ms", "same steps at fp32", pc["fp32"] * 1e3,
               "torch.autocast bf16 on this CPU; ratio < 1: bf16 faster"),
        figure("ideal bf16 step, each product at its shape's bf16 rate", ideal_bf16 * 1e3, "ms",
               "measured bf16 step (median)", pc["bf16"] * 1e3, "ratio = fraction of ideal reached"),
        figure(f"large run: C-MCR epoch, {lg['n_train']:,} pairs ({lg['steps']} steps)", lg["epoch_s"], "s",
               "baseline epoch (EXTRAPOLATED: steps x median step)", b["step_median_s"] * lg["steps"] / lg["epochs"],
               "measured: 1 epoch, fresh process"),
        figure(f"large run: C-MCR training throughput, {lg['n_via']:,} pairs", lg["samples_per_s"], "samples/s",
               "baseline: readout recomputed per step", b["batch"] / b["step_median_s"], "ratio = speed-up over the baseline"),
        figure(f"large run: readout precompute, {lg['n_via']:,} x {lg['n_mem']:,}, both sides", lg["precompute_s"], "s",
               "ideal: readout FLOPs / GFLOP/s of its shapes", readout_ideal(lg["n_via"]), "ratio = measured / ideal"),
        figure(f"large run: peak RSS (VmHWM) of the whole train() process, {lg['n_via']:,} pairs", lg["peak_rss_bytes"] / 2**30, "GiB",
               "full via x memory fp32 matrix (one side)", lg["full_matrix_bytes"] / 2**30, "ratio < 1: the readout is chunked"),
        figure("large run: peak RSS - RSS before train() (inputs made)", lg["train_extra_bytes"] / 2**30, "GiB",
               "the two N x d readouts train() keeps", lg["readouts_bytes"] / 2**30, "the rest is the steps' working set, which does not grow with N"),
        figure(f"query top-{TOP_K}, chunked, {MACHINE_THREADS} threads", q[MACHINE_THREADS]["chunked_ms"], "ms",
               "torch.topk(gallery @ q)", q[MACHINE_THREADS]["full_ms"], f"{s['query_gallery']:,} gallery"),
        figure(f"query top-{TOP_K}, topk(gallery @ q), {MACHINE_THREADS} threads", q[MACHINE_THREADS]["full_ms"], "ms",
               "target", QUERY_TARGET_MS, f"under {QUERY_TARGET_MS:g} ms: {q[MACHINE_THREADS]['full_ms'] < QUERY_TARGET_MS}"),
        figure(f"query top-{TOP_K}, topk(gallery @ q), 1 thread", q[1]["full_ms"], "ms",
               "target", QUERY_TARGET_MS, f"under {QUERY_TARGET_MS:g} ms: {q[1]['full_ms'] < QUERY_TARGET_MS}"),
        figure("extraction, ViT-B-32 (random init) through mcrgraph.embed, empty cache", details["extraction"]["cold_s"], "s",
               "raw forward on ready tensors", details["extraction"]["raw_s"],
               f"{details['extraction']['images']} JPEG files; target: overhead under 10% (ratio under 1.10)"),
        figure("extraction, cache hit", details["extraction"]["hit_s"], "s",
               "raw forward on ready tensors", details["extraction"]["raw_s"], "embeddings read back from the on-disk cache"),
        *readout_sdpa.figures(details["readout_sdpa"]),
        *ulip_attention.figures(details["ulip_attention"]),
    ]
    for x in details["topk_readout"]["rows"]:
        if x["k"] == 32 and x["temperature"] == 0.05:
            figures.append(figure(f"top-k readout, {x['backend']}, k=32, τ=0.05 (max error {x['max_error']:.1e})", x["s"], "s",
                                  "full readout, every key (memory_readout)", x["full_s"], "ratio < 1: top-k faster; section 10"))
    sizes = {k: v for k, v in s.items() if k not in ("large_candidates", "budget_s")}
    sizes.update(large_via=lg["n_via"], step_threads=step_threads, precompute_threads=MACHINE_THREADS)
    report = {"mode": mode, "machine": info, "sizes": sizes, "figures": figures, "details": details,
              "stage_s": stage_s, "other_cores_busy": others, "runtime_s": time.perf_counter() - start}
    write_atomic(os.path.join(RESULTS, "report.json"), json.dumps(report, indent=2, default=str) + "\n")
    write_atomic(os.path.join(RESULTS, "report.md"), render(report))
    log(f"wrote {RESULTS}/report.json and report.md in {report['runtime_s']:.0f} s")


if __name__ == "__main__":
    main()
