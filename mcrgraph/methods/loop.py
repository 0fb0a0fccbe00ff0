"""What every connector method's training shares: the held-out split, the epoch loop with
progress, thread pinning, divergence check and checkpoints, and the validation score."""
from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch

from ..store.checkpoints import Checkpointer, load_module, module_tensors, optimizer_from_flat, optimizer_to_flat
from ..errors import DataError
from ..io.progress import progress_bar
from .losses import recalls


def split(n: int, val_fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(held-out, training) indices of n via items; nothing is held out when it would leave
    fewer than 2 on either side."""
    order = torch.randperm(n, generator=gen)
    n_val = int(round(n * val_fraction))
    n_val = n_val if n_val >= 2 and n - n_val >= 2 else 0
    return order[:n_val], order[n_val:]


SMALL_STEP = 5e7  # multiply-adds of a head's first layer per step, below which one thread wins


def step_threads(cfg, rows: int, d_in: int) -> int | None:
    """``cfg.threads``, or for None: 1 for small heads (thread start-up costs more than it
    saves), else None (torch's setting)."""
    if cfg.threads is not None:
        return cfg.threads
    width = d_in if cfg.layers == 1 else cfg.hidden_factor * d_in
    return 1 if rows * d_in * width < SMALL_STEP else None


@contextlib.contextmanager
def threads(n: int | None):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_epochs(
    name: str,
    cfg,
    modules: dict[str, torch.nn.Module],
    opt: torch.optim.Optimizer,
    gen: torch.Generator,
    epoch_fn: Callable[[], float],
    checkpoint: Checkpointer | None,
    progress: bool,
    width: int,
) -> dict[str, float]:
    """Run ``cfg.epochs`` epochs of ``epoch_fn`` (returns the epoch's mean loss), resuming from
    and writing to ``checkpoint``; ``width`` is the heads' widest input dim (picks the thread
    count). Returns metrics (``train_loss``)."""
    metrics: dict[str, float] = {}
    start = 0
    saved = checkpoint.load() if checkpoint else None
    if saved is not None:  # continue exactly where the killed run stopped: same weights, moments, RNG
        tensors, meta = saved
        for prefix, module in modules.items():
            load_module(prefix, module, tensors)
        optimizer_from_flat(opt, tensors, meta["param_groups"])
        gen.set_state(tensors["rng"])
        start, metrics = meta["epoch"] + 1, meta["metrics"]
    for module in modules.values():
        module.train()
    with threads(step_threads(cfg, cfg.batch_size, width)), progress_bar(total=cfg.epochs, desc=name, unit="epoch", enabled=progress) as bar:
        bar.update(start)
        for epoch in range(start, cfg.epochs):
            metrics["train_loss"] = epoch_fn()
            if not math.isfinite(metrics["train_loss"]):
                raise DataError(f"{name} training diverged (loss is not finite); lower --lr or check the embeddings")
            bar.set_postfix(loss=f"{metrics['train_loss']:.4f}")
            bar.update(1)
            if checkpoint and checkpoint.due(epoch, cfg.epochs):
                opt_tensors, opt_meta = optimizer_to_flat(opt)
                state = {**opt_tensors, "rng": gen.get_state()}
                for prefix, module in modules.items():
                    state.update(module_tensors(prefix, module))
                checkpoint.save(state, {"epoch": epoch, "metrics": metrics, **opt_meta})
    for module in modules.values():
        module.eval()
    return metrics


def via_retrieval(za: torch.Tensor, zb: torch.Tensor) -> dict[str, float]:
    """Held-out retrieval of the via items across the two sides (row i of za and zb pair)."""
    ab, ba = recalls(za, zb, (1, 5)), recalls(zb, za, (1, 5))
    m = {"val_r1_a_to_b": ab[1], "val_r1_b_to_a": ba[1], "val_r5": (ab[5] + ba[5]) / 2}
    m["val_r1"] = (m["val_r1_a_to_b"] + m["val_r1_b_to_a"]) / 2
    m["val_items"] = float(len(za))
    return m
