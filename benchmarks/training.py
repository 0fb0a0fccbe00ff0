"""C-MCR training: mcrgraph's own ``cmcr.train`` timed in parts, a per-step-readout baseline,
the FLOP count of one step and an op profile of the real step.

The parts of ``cmcr.train`` are timed without changing the library: for the duration of one
call the module-level names ``memory_readout`` and ``run_epochs`` in ``mcrgraph.methods.cmcr``
are wrapped with timers, and a global optimizer step hook timestamps every step."""
from __future__ import annotations

import contextlib
import statistics
import time

import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook

from mcrgraph.methods import TrainingData, cmcr
from mcrgraph.methods.common import Projector, adamw
from mcrgraph.methods.losses import info_nce, perturb

from .common import median_time, threads, unit_rows


def make_data(n_via: int, n_mem: int, d: int, seed: int = 0) -> TrainingData:
    gen = torch.Generator().manual_seed(seed)
    return TrainingData(via_a=unit_rows(n_via, d, gen), via_b=unit_rows(n_via, d, gen),
                        memory_a=unit_rows(n_mem, d, gen), memory_b=unit_rows(n_mem, d, gen))


@contextlib.contextmanager
def _instrumented(record: dict, profiler=None):
    """Time cmcr's readouts, its epoch loop and each optimizer step; restore everything after."""
    readout, run_epochs = cmcr.memory_readout, cmcr.run_epochs
    record.update(readout_s=0.0, epochs_s=0.0, step_ends=[])

    def timed_readout(*args, **kwargs):
        t0 = time.perf_counter()
        out = readout(*args, **kwargs)
        record["readout_s"] += time.perf_counter() - t0
        return out

    def timed_epochs(*args, **kwargs):
        with profiler if profiler is not None else contextlib.nullcontext():
            t0 = time.perf_counter()
            out = run_epochs(*args, **kwargs)
            record["epochs_s"] += time.perf_counter() - t0
        return out

    handle = register_optimizer_step_post_hook(lambda *_: record["step_ends"].append(time.perf_counter()))
    cmcr.memory_readout, cmcr.run_epochs = timed_readout, timed_epochs
    try:
        yield
    finally:
        cmcr.memory_readout, cmcr.run_epochs = readout, run_epochs
        handle.remove()


def run_cmcr(data: TrainingData, cfg: cmcr.Config, caller_threads: int, profiler=None) -> dict:
    """One ``cmcr.train`` call. ``caller_threads`` is torch's setting around the call: the
    readout precompute runs at it, the epochs at ``cfg.threads``."""
    record: dict = {}
    with threads(caller_threads), _instrumented(record, profiler):
        t0 = time.perf_counter()
        trained = cmcr.train(data, cfg)
        total = time.perf_counter() - t0
    n_train = len(data.via_a) - int(round(len(data.via_a) * cfg.val_fraction))
    bs = min(cfg.batch_size, n_train)
    steps = (n_train // bs) * cfg.epochs
    intervals = [b - a for a, b in zip(record["step_ends"], record["step_ends"][1:])]
    return {
        "total_s": total,
        "precompute_s": record["readout_s"],
        "epochs_s": record["epochs_s"],
        "epoch_s": record["epochs_s"] / max(1, cfg.epochs),
        "other_s": total - record["readout_s"] - record["epochs_s"],
        "epochs": cfg.epochs,
        "steps": steps,
        "n_train": n_train,
        "batch": bs,
        "step_median_s": statistics.median(intervals) if intervals else float("nan"),
        "step_mean_s": record["epochs_s"] / max(1, steps),
        "samples_per_s": steps * bs / record["epochs_s"] if record["epochs_s"] else float("nan"),
        "train_loss": trained.metrics.get("train_loss"),
        "caller_threads": caller_threads,
        "step_threads": cfg.threads,
    }


def baseline_steps(data: TrainingData, cfg: cmcr.Config, n_steps: int, warmup: int = 2) -> dict:
    """The straightforward C-MCR step: the memory softmax readout of the batch, for both sides,
    recomputed inside every step; heads, noise, losses and optimizer as in mcrgraph."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    d_a, d_b = data.via_a.shape[1], data.via_b.shape[1]
    out = cfg.out_dim or max(d_a, d_b)
    fa, fb = Projector(d_a, out, cfg.layers, cfg.hidden_factor), Projector(d_b, out, cfg.layers, cfg.hidden_factor)
    opt = adamw([*fa.parameters(), *fb.parameters()], cfg)
    tau = cfg.memory_temperature

    def readout(q: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.softmax(q @ memory.T / tau, dim=1) @ memory, dim=1)

    def step(idx: torch.Tensor) -> float:
        ta, tb = data.via_a[idx], data.via_b[idx]
        va, vb = readout(ta, data.memory_a), readout(tb, data.memory_b)
        za, zb = fa(perturb(ta, cfg.noise_std, gen)), fb(perturb(tb, cfg.noise_std, gen))
        zva, zvb = fa(perturb(va, cfg.noise_std, gen)), fb(perturb(vb, cfg.noise_std, gen))
        loss = info_nce(za, zb, cfg.temperature) + info_nce(zva, zvb, cfg.temperature)
        loss = loss + cfg.intra_weight * ((za - zva).pow(2).sum(1).mean() + (zb - zvb).pow(2).sum(1).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    bs = min(cfg.batch_size, len(data.via_a))
    perm = torch.randperm(len(data.via_a), generator=gen)
    per_pass = len(perm) // bs
    batches = [perm[(i % per_pass) * bs:][:bs] for i in range(warmup + n_steps)]
    times = []
    fa.train(), fb.train()
    with threads(cfg.threads):
        for i, idx in enumerate(batches):
            t0 = time.perf_counter()
            step(idx)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    return {"step_median_s": statistics.median(times), "steps_timed": n_steps, "warmup_steps": warmup,
            "batch": bs, "threads": cfg.threads}


def step_products(cfg: cmcr.Config, batch: int, d_a: int, d_b: int, with_memory: bool = True) -> list[dict]:
    """Every matmul of one training step as ``{"shape": (m, k, n), "count": c, "part": ...}``.
    Per head and input: the forward of each Linear, its weight gradient, and the input gradient
    of every Linear but the first (the inputs need no gradient). InfoNCE: the logits product and
    its two gradients. Not here: BatchNorm, ReLU, normalise, softmax, noise, AdamW (elementwise)."""
    out = cfg.out_dim or max(d_a, d_b)
    per_side = 2 if with_memory else 1
    products: list[dict] = []

    def add(shape: tuple[int, int, int], count: int, part: str) -> None:
        products.append({"shape": shape, "count": count, "part": part})

    for d_in in (d_a, d_b):
        if cfg.layers == 1:
            add((batch, d_in, out), per_side, "heads")  # forward
            add((out, batch, d_in), per_side, "heads")  # weight gradient
            continue
        h = cfg.hidden_factor * d_in
        add((batch, d_in, h), per_side, "heads")  # layer 1 forward
        add((h, batch, d_in), per_side, "heads")  # layer 1 weight gradient
        add((batch, h, out), per_side, "heads")  # layer 2 forward
        add((out, batch, h), per_side, "heads")  # layer 2 weight gradient
        add((batch, out, h), per_side, "heads")  # layer 2 input gradient
    add((batch, out, batch), per_side, "logits")  # x @ yᵀ
    add((batch, batch, out), 2 * per_side, "logits")  # its gradients for x and y
    return products


def _flops(product: dict) -> int:
    m, k, n = product["shape"]
    return 2 * m * k * n * product["count"]  # 2 FLOPs per multiply-add


def step_flops(products: list[dict]) -> dict:
    """Matmul FLOPs of one step, by part and in total."""
    flops = {"heads": 0, "logits": 0}
    for p in products:
        flops[p["part"]] += _flops(p)
    return {**flops, "total": sum(flops.values())}


def ideal_step_s(products: list[dict], gflops_of) -> float:
    """Seconds of one step's matmuls with each product at ``gflops_of((m, k, n))``."""
    return sum(_flops(p) / (gflops_of(p["shape"]) * 1e9) for p in products)


def readout_flops(n_queries: int, n_mem: int, d: int) -> int:
    """Matmul FLOPs of one side's readout: scores (q x M) and weights @ memory."""
    return 2 * 2 * n_queries * n_mem * d


MATMUL_OPS = ("aten::mm", "aten::addmm")  # the profile's ops that are the step's matmuls


def profile_steps(cfg: cmcr.Config, n_steps: int, d: int, top: int = 12) -> dict:
    """torch.profiler over the epoch loop of a real ``cmcr.train`` call (``n_steps`` steps, a
    small memory so the readout is cheap; the step itself does not depend on the memory size)."""
    from torch.profiler import ProfilerActivity, profile

    cfg = cfg.model_copy(update={"epochs": 1, "val_fraction": 0.0})
    data = make_data(cfg.batch_size * n_steps, 1024, d, seed=1)
    prof = profile(activities=[ProfilerActivity.CPU])
    run = run_cmcr(data, cfg, caller_threads=cfg.threads or torch.get_num_threads(), profiler=prof)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total_us = sum(e.self_cpu_time_total for e in events)
    matmul_us = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    rows = [{"op": e.key, "calls": e.count, "self_ms_per_step": e.self_cpu_time_total / 1e3 / n_steps,
             "share": e.self_cpu_time_total / total_us} for e in events[:top]]
    return {"steps": n_steps, "threads": cfg.threads, "epoch_s_profiled": run["epochs_s"], "top_ops": rows,
            "matmul_ms_per_step": matmul_us / 1e3 / n_steps, "other_ms_per_step": (total_us - matmul_us) / 1e3 / n_steps}


def matmuls_alone(products: list[dict], seed: int = 0):
    """A callable that runs every product of one step (``step_products``) on ready random
    operands, back to back: the step's matmuls with nothing else."""
    gen = torch.Generator().manual_seed(seed)
    ops = []
    for p in products:
        m, k, n = p["shape"]
        ops.append((torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen), p["count"]))

    def run() -> None:
        for a, b, count in ops:
            for _ in range(count):
                torch.mm(a, b)
    return run


def step_vs_matmuls(cfg: cmcr.Config, products: list[dict], n_steps: int, d: int, pairs: int) -> dict:
    """Alternating blocks, ``pairs`` times: real ``cmcr.train`` steps (median of ``n_steps``),
    then the same step's matmuls alone (median of ``n_steps`` runs). Both halves of a pair see
    the machine in the same state, so each pair's ratio is the step's distance from its own
    matmuls at that moment; the spread across pairs is the machine's drift."""
    alone = matmuls_alone(products)
    rows = []
    for _ in range(pairs):
        step = compare_steps(cfg, n_steps, d, {"fp32": {}})["step_median_s"]["fp32"]
        with threads(cfg.threads or torch.get_num_threads()):
            mm = median_time(alone, n_steps, warmup=2)
        rows.append({"step_s": step, "matmuls_s": mm, "ratio": step / mm})
    ratios = sorted(r["ratio"] for r in rows)
    return {"steps": n_steps, "pairs": rows, "ratio_median": statistics.median(ratios), "ratio_min": ratios[0],
            "ratio_max": ratios[-1], "step_median_s": statistics.median(r["step_s"] for r in rows),
            "matmuls_median_s": statistics.median(r["matmuls_s"] for r in rows)}


def compare_steps(cfg: cmcr.Config, n_steps: int, d: int, variants: dict[str, dict]) -> dict:
    """Median step time of real ``cmcr.train`` epochs for each variant (label: config fields to
    change), e.g. thread counts or precisions; torch's thread setting follows ``cfg.threads``."""
    data = make_data(cfg.batch_size * n_steps, 1024, d, seed=2)
    out = {}
    for label, update in variants.items():
        c = cfg.model_copy(update={"epochs": 1, "val_fraction": 0.0, **update})
        out[label] = run_cmcr(data, c, caller_threads=c.threads or torch.get_num_threads())["step_median_s"]
    return {"steps": n_steps, "step_median_s": out}
