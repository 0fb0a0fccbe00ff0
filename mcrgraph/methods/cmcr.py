"""C-MCR (Connecting Multi-modal Contrastive Representations, arXiv 2305.14381): two
projectors map spaces A and B into a new shared space, trained only on embeddings of the
modality they share, plus optional unpaired memories of each side's other modality."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..checkpoints import Checkpointer, load_module, module_tensors, optimizer_from_flat, optimizer_to_flat
from ..errors import ConnectorFileError, DataError
from ..progress import progress_bar
from . import Trained, TrainingData
from .losses import info_nce, memory_readout, perturb, recall_at

NAME = "c-mcr"


class Config(BaseModel):
    """C-MCR hyperparameters. The paper's exact values were not available to us; the defaults
    were chosen by measurement on the project's own benchmark (docs/architecture.md)."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(60, ge=0, description="passes over the training via-items")
    batch_size: int = Field(512, ge=2, description="via-items per step")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    temperature: float = Field(0.05, gt=0, description="InfoNCE temperature of the inter-MCR alignment")
    memory_temperature: float = Field(0.01, gt=0, description="τ1 of the semantic-consistency softmax over memories")
    noise_std: float = Field(0.04, ge=0, description="std of the Gaussian noise added to every embedding each step (semantic completion)")
    intra_weight: float = Field(1.0, ge=0, description="λ: weight of the intra-MCR alignment (needs memories)")
    layers: Literal[1, 2] = Field(2, description="2: Linear-BN-ReLU-Linear-BN (CLIP<->CLAP heads); 1: one Linear (CLIP<->ULIP heads)")
    hidden_factor: int = Field(2, ge=1, description="hidden width = hidden_factor x input dim")
    out_dim: int | None = Field(None, ge=1, description="dim of the new space; default: the larger input dim")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="held-out share of the via-items for the validation score")
    seed: int = Field(0, description="seeds init, split, batches and noise")
    device: str = Field("cpu", description="torch device to train on, e.g. cuda")
    checkpoint_every: int = Field(1, ge=1, description="save a resumable checkpoint every this many epochs")
    threads: int | None = Field(1, ge=1, description="CPU threads for the training steps (None: torch's setting). The heads are small: on 2 cores one thread ran the synthetic default 2x faster than two, and far faster when another process was busy")

    @model_validator(mode="after")
    def _device_ok(self):
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but torch sees no CUDA device here; use --device cpu")
        return self


class Projector(nn.Module):
    def __init__(self, d_in: int, d_out: int, layers: int = 2, hidden_factor: int = 2):
        super().__init__()
        if layers == 1:
            self.net = nn.Sequential(nn.Linear(d_in, d_out))
        else:
            h = hidden_factor * d_in
            self.net = nn.Sequential(nn.Linear(d_in, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, d_out), nn.BatchNorm1d(d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


def _projectors(cfg: Config, dim_a: int, dim_b: int) -> tuple[Projector, Projector, int]:
    out = cfg.out_dim or max(dim_a, dim_b)
    return Projector(dim_a, out, cfg.layers, cfg.hidden_factor), Projector(dim_b, out, cfg.layers, cfg.hidden_factor), out


@dataclass
class CMCRHeads:
    a: Projector
    b: Projector

    def apply(self, side: int, modality: str, emb: torch.Tensor) -> torch.Tensor:
        return (self.a if side == 0 else self.b)(emb)


def load_heads(card, tensors: dict[str, torch.Tensor]) -> CMCRHeads:
    try:
        cfg = Config.model_validate({**card.config, "device": "cpu"})
    except ValueError as e:
        raise ConnectorFileError(f"connector {card.name!r}: its card's {NAME} config does not fit this mcrgraph ({e.errors()[0]['msg'] if hasattr(e, 'errors') else e})") from None
    a, b, _ = _projectors(cfg, card.spaces[0].dim, card.spaces[1].dim)
    for prefix, head in (("a.", a), ("b.", b)):
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        missing, unexpected = head.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConnectorFileError(
                f"connector {card.name!r}: weights do not fit a {NAME} head (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        head.eval()
    return CMCRHeads(a, b)


@contextlib.contextmanager
def _threads(n: int | None):
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(data: TrainingData, cfg: Config, progress: bool = False, checkpoint: Checkpointer | None = None) -> Trained:
    """Train the two projectors; returns their weights (keys ``a.*``, ``b.*``) and metrics.
    With ``checkpoint``, state is saved after epochs and a saved state is resumed exactly."""
    n = len(data.via_a)
    if n < 4:
        raise DataError(f"C-MCR needs at least 4 via items, got {n}")
    with_memory = data.memory_a is not None and data.memory_b is not None
    if (data.memory_a is None) != (data.memory_b is None):
        raise DataError("C-MCR uses memories of both sides or of neither; give a memory for each space")
    dev = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    fa, fb, out_dim = _projectors(cfg, data.via_a.shape[1], data.via_b.shape[1])
    fa, fb = fa.to(dev), fb.to(dev)

    order = torch.randperm(n, generator=gen)
    n_val = int(round(n * cfg.val_fraction))
    n_val = n_val if n_val >= 2 and n - n_val >= 2 else 0
    val, tr = order[:n_val], order[n_val:]
    ta, tb = data.via_a.to(dev), data.via_b.to(dev)
    if with_memory:  # semantic consistency: fixed for frozen encoders, so computed once
        va = memory_readout(ta, data.memory_a.to(dev), cfg.memory_temperature)
        vb = memory_readout(tb, data.memory_b.to(dev), cfg.memory_temperature)

    params = list(fa.parameters()) + list(fb.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    bs = min(cfg.batch_size, len(tr))
    steps = len(tr) // bs  # drop the ragged last batch: BatchNorm needs >1 row
    metrics: dict[str, float] = {}
    start = 0
    saved = checkpoint.load() if checkpoint else None
    if saved is not None:  # continue exactly where the killed run stopped: same weights, moments, RNG
        tensors, meta = saved
        load_module("a", fa, tensors), load_module("b", fb, tensors)
        optimizer_from_flat(opt, tensors, meta["param_groups"])
        gen.set_state(tensors["rng"])
        start, metrics = meta["epoch"] + 1, meta["metrics"]
    fa.train(), fb.train()
    with _threads(cfg.threads), progress_bar(total=cfg.epochs, desc="c-mcr", unit="epoch", enabled=progress) as bar:
        bar.update(start)
        for epoch in range(start, cfg.epochs):
            perm = tr[torch.randperm(len(tr), generator=gen)]
            total = 0.0
            for s in range(steps):
                idx = perm[s * bs : (s + 1) * bs].to(dev)
                za = fa(perturb(ta[idx], cfg.noise_std, gen))
                zb = fb(perturb(tb[idx], cfg.noise_std, gen))
                loss = info_nce(za, zb, cfg.temperature)
                if with_memory:
                    zva = fa(perturb(va[idx], cfg.noise_std, gen))
                    zvb = fb(perturb(vb[idx], cfg.noise_std, gen))
                    loss = loss + info_nce(zva, zvb, cfg.temperature)
                    if cfg.intra_weight:
                        intra = (za - zva).pow(2).sum(1).mean() + (zb - zvb).pow(2).sum(1).mean()
                        loss = loss + cfg.intra_weight * intra
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item()
            metrics["train_loss"] = total / max(1, steps)
            if not math.isfinite(metrics["train_loss"]):
                raise DataError("C-MCR training diverged (loss is not finite); lower --lr or check the embeddings")
            bar.set_postfix(loss=f"{metrics['train_loss']:.4f}")
            bar.update(1)
            if checkpoint and checkpoint.due(epoch, cfg.epochs):
                opt_tensors, opt_meta = optimizer_to_flat(opt)
                state = {**module_tensors("a", fa), **module_tensors("b", fb), **opt_tensors, "rng": gen.get_state()}
                checkpoint.save(state, {"epoch": epoch, "metrics": metrics, **opt_meta})
    fa.eval(), fb.eval()
    if n_val:
        with torch.inference_mode():
            za, zb = fa(ta[val]), fb(tb[val])
            metrics["val_r1_a_to_b"] = recall_at(za, zb, 1)
            metrics["val_r1_b_to_a"] = recall_at(zb, za, 1)
            metrics["val_r5"] = (recall_at(za, zb, 5) + recall_at(zb, za, 5)) / 2
        metrics["val_r1"] = (metrics["val_r1_a_to_b"] + metrics["val_r1_b_to_a"]) / 2
        metrics["val_items"] = float(n_val)
    tensors = {f"a.{k}": v.detach().cpu() for k, v in fa.state_dict().items()}
    tensors.update({f"b.{k}": v.detach().cpu() for k, v in fb.state_dict().items()})
    return Trained(tensors=tensors, metrics=metrics, dim=out_dim)
