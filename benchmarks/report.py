"""Render the benchmark results (the dict written to report.json) as Markdown."""
from __future__ import annotations


def num(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if x != x:
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def gib(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c if isinstance(c, str) else num(c) for c in row) + " |" for row in rows]
    return lines + [""]


def parts_table(run: dict) -> list[str]:
    """Where one timed ``cmcr.train`` call (benchmarks.training.run_cmcr) spent its time."""
    return table(["part of the train() call", "seconds"],
                 [["readout precompute (both sides)", run["precompute_s"]], [f"epoch loop ({run['epochs']} epoch)", run["epochs_s"]],
                  ["other (setup, split, validation retrieval)", run["other_s"]], ["total", run["total_s"]]])


def render(r: dict) -> str:
    m, s, d = r["machine"], r["sizes"], r["details"]
    out = [f"# mcrgraph benchmarks ({r['mode']} run)", ""]
    out += table(["Machine", ""], [["CPU model", m["cpu_model"]], ["cores", str(m["cores"])], ["torch", m["torch"]],
                                   ["torch threads (default at start)", str(m["torch_threads_default"])],
                                   ["python", m["python"]], ["date", m["date"]]])
    out += ["## Sizes used", ""]
    out += table(["size", "value"], [[k, v if isinstance(v, (int, float)) else str(v)] for k, v in s.items()])
    out += ["## Figures", "", "Every figure next to its baseline measured in this run; ratio = value / baseline.", ""]
    out += table(["figure", "value", "unit", "baseline", "baseline value", "ratio", "note"],
                 [[f["name"], f["value"], f["unit"], f["baseline"], f["baseline_value"], f["ratio"], f["note"]] for f in r["figures"]])

    mm = d["matmul"]
    out += ["## 1. Matmul roofline (fp32 torch.mm, median of %d samples of ~%g s each, after %g s warm-up)" % (mm["repeats"], mm["sample_s"], mm["warmup_s"]), ""]
    out += table(["shape m x k x n", "used by", "GFLOP/s 1 thread", "GFLOP/s 2 threads", "2t / 1t", "bf16 1 thread", "bf16 2 threads"],
                 [[x["shape"], x.get("use", "step"), x["gflops_1t"], x["gflops_2t"], x["gflops_2t"] / x["gflops_1t"],
                   x.get("gflops_1t_bf16", "-"), x.get("gflops_2t_bf16", "-")] for x in mm["shapes"]])

    t, b = d["train"], d["baseline"]
    out += ["## 2-4. C-MCR training", ""]
    out += [f"`cmcr.train` on {num(s['n_via'])} via pairs ({num(t['n_train'])} trained, {num(t['steps'])} steps of "
            f"{t['batch']}), memories of {num(s['n_mem'])} per side, {t['epochs']} epoch(s); readout precompute at "
            f"{t['caller_threads']} torch threads (cfg.threads, or the caller's setting when None), steps at cfg.threads = {t['step_threads']}.", ""]
    out += parts_table(t)
    out += [f"Step time: median {num(t['step_median_s'] * 1e3)} ms over the step-to-step intervals, mean "
            f"{num(t['step_mean_s'] * 1e3)} ms (epoch / steps). Baseline (readout recomputed per step): median of "
            f"{b['steps_timed']} steps after {b['warmup_steps']} warm-up steps = {num(b['step_median_s'] * 1e3)} ms. "
            "Baseline epoch and multi-epoch times are extrapolated (steps x median step).", ""]
    fl = d["flops"]
    out += [f"FLOPs per step: heads {num(fl['heads'] / 1e9)} G + InfoNCE logits {num(fl['logits'] / 1e9)} G = "
            f"{num(fl['total'] / 1e9)} GFLOP. Two ideals: FLOPs / the best step shape's GFLOP/s at {t['step_threads']} threads "
            "(strict), and each product at its own shape's rate (benchmarks.training.step_products).", ""]

    tc = d["threads_compare"]
    out += [f"### Step time by thread count (real cmcr.train, {tc['steps']} steps, median)", ""]
    out += table(["cfg.threads", "step ms"], [[str(k), v * 1e3] for k, v in tc["step_median_s"].items()])
    if "precision_compare" in d:
        pc = d["precision_compare"]
        out += [f"### Step time by precision (real cmcr.train, {pc['steps']} steps, median)", ""]
        out += table(["cfg.precision", "step ms"], [[k, v * 1e3] for k, v in pc["step_median_s"].items()])

    if "step_vs_matmuls" in d:
        sv = d["step_vs_matmuls"]
        out += [f"### The step next to its own matmuls (alternating blocks of {sv['steps']}, medians)", ""]
        out += table(["pair", "real step ms", "its matmuls alone ms", "ratio"],
                     [[str(i + 1), x["step_s"] * 1e3, x["matmuls_s"] * 1e3, x["ratio"]] for i, x in enumerate(sv["pairs"])])

    p = d["profile"]
    out += [f"### Where a step's time goes (torch.profiler, {p['steps']} real steps at {p['threads']} thread(s), self CPU time)", ""]
    if "matmul_ms_per_step" in p:
        out += [f"mm and addmm: {num(p['matmul_ms_per_step'])} ms per step; every other op: {num(p['other_ms_per_step'])} ms.", ""]
    out += table(["op", "calls", "ms per step", "share"],
                 [[x["op"], x["calls"], x["self_ms_per_step"], f"{100 * x['share']:.1f}%"] for x in p["top_ops"]])

    lg = d["large"]
    out += [f"## 5. Large run: `cmcr.train` on {num(lg['n_via'])} pairs in a fresh process", ""]
    out += [f"{num(lg['n_via'])} via pairs ({num(lg['n_train'])} trained, {num(lg['steps'])} steps of {lg['batch']}) against "
            f"{num(lg['n_mem'])} memories per side, dim {lg['dim']}, {lg['threads']} threads, one epoch, timed in parts "
            f"as in 2-4. {lg['choice']}", ""]
    out += parts_table(lg)
    out += [f"Step time: median {num(lg['step_median_s'] * 1e3)} ms; {num(lg['samples_per_s'])} samples/s.", ""]
    out += table(["memory", "bytes"], [["RSS before train() (python, torch, the synthetic inputs)", gib(lg["rss_before_bytes"])],
                                       ["the inputs: via pairs and memories", gib(lg["inputs_bytes"])],
                                       ["peak RSS (VmHWM) of the process", gib(lg["peak_rss_bytes"])],
                                       ["peak - before", gib(lg["train_extra_bytes"])],
                                       ["the two readouts (N x d each) train() keeps for its epochs", gib(lg["readouts_bytes"])],
                                       ["getrusage ru_maxrss after (inherits the parent's RSS across exec)", gib(lg["ru_maxrss_bytes"])],
                                       ["one full via x memory fp32 matrix (never built)", gib(lg["full_matrix_bytes"])]])

    q = d["query"]
    out += [f"## 6. Query: one {q['dim']}-d query, {num(q['n_gallery'])} x {q['dim']} gallery ({gib(q['gallery_bytes'])}), "
            f"top-{q['k']}, median of {q['repeats']}", ""]
    from .query import markdown as query_markdown

    out += [query_markdown(q)]
    if "extraction" in d:
        from .extraction import markdown as extraction_markdown

        out += ["", "## 7. Extraction through a real encoder", "", extraction_markdown(d["extraction"]), ""]
    if "topk_readout" in d:
        from .topk_readout import markdown as readout_markdown

        out += ["## 10. Top-k readout against the full readout", "", readout_markdown(d["topk_readout"]), ""]
    out += ["## Run", "", "Other processes' load is measured from /proc/stat minus this run's own CPU time; when it is "
            "well above 0, the multi-thread figures of that stage were contended.", ""]
    out += table(["stage", "wall s", "cores kept busy by other processes"],
                 [[k, v, r["other_cores_busy"][k]] for k, v in r["stage_s"].items()] + [["whole run", r["runtime_s"], ""]])
    return "\n".join(out)
