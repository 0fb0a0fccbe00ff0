"""Configuration fields and the projector head that the connector methods share."""
from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn


Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


class TrainConfig(BaseModel):
    """Fields every method has. Subclasses add their own; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(60, ge=0, description="passes over the training data")
    batch_size: int = Field(512, ge=2, description="training rows per step")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay")
    temperature: float = Field(0.05, gt=0, description="InfoNCE temperature of the alignment losses")
    memory_temperature: float = Field(0.01, gt=0, description="τ1 of the softmax retrieval over memories")
    noise_std: float = Field(0.04, ge=0, description="std of the Gaussian noise added to every input embedding each step (semantic completion)")
    layers: Literal[1, 2] = Field(2, description="2: Linear-BN-ReLU-Linear-BN (CLIP<->CLAP heads); 1: one Linear (CLIP<->ULIP heads)")
    hidden_factor: int = Field(2, ge=1, description="hidden width = hidden_factor x input dim")
    blocks: int = Field(1, ge=1, description="layers=2: how many Linear-BN-ReLU-Linear-BN blocks are stacked (2 in the official Ex-MCR heads)")
    bn_relu: bool = Field(False, description="layers=1: BatchNorm and ReLU after the Linear (the official C-MCR CLIP<->ULIP heads)")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="held-out share of the via-items for the validation score")
    seed: int = Field(0, description="seeds init, split, batches and noise")
    device: str = Field("cpu", description="torch device to train on, e.g. cuda")
    precision: Precision = Field("fp32", description="compute type of the training steps (torch.autocast): bf16 or fp16 for speed on a GPU, bf16 on a CPU with native bf16 (AVX512-BF16/AMX: 1.9x faster 512-d steps in benchmarks/); weights, optimizer state and stored heads stay float32; fp16 scales the loss (GradScaler)")
    checkpoint_every: int = Field(1, ge=1, description="save a resumable checkpoint every this many epochs")
    threads: int | None = Field(None, ge=1, description="CPU threads for the training steps. None: one thread for small heads (first layer under 5e7 multiply-adds per step), else torch's setting. On 2 cores one thread ran 64-d heads 2x faster than two, two threads ran 512-d heads 1.8x faster than one (benchmarks/), and two threads thrash when another process is busy")

    @model_validator(mode="after")
    def _device_ok(self):
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {self.device!r} asked for, but torch sees no CUDA device here; use --device cpu")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device {self.device!r} is not a torch device; use cpu, cuda or cuda:N") from None
        return self


def adamw(params, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW at ``cfg``'s rate and decay, fused into one kernel over all parameters where this
    torch has that for the device (CPU and CUDA since torch 2.4): on 512-d C-MCR heads its
    step took 0.7 ms instead of 2.9 ms (benchmarks/README.md)."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except RuntimeError:  # older torch, or a device without the fused kernel
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class Steps:
    """One optimizer step of a method, at ``cfg.precision``: the forward and loss under
    ``torch.autocast`` (float32 when ``fp32``), backward and step through a GradScaler for fp16."""

    def __init__(self, cfg: TrainConfig, opt: torch.optim.Optimizer):
        self.device_type = torch.device(cfg.device).type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        self.opt = opt
        self.scaler = torch.amp.GradScaler(self.device_type) if cfg.precision == "fp16" else None

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def step(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()


class Projector(nn.Module):
    """``layers=2``: ``blocks`` x Linear-BN-ReLU-Linear-BN (one block: the official C-MCR
    CLIP<->CLAP heads; two: the official Ex-MCR heads). ``layers=1``: one Linear, with
    ``bn_relu`` followed by BN-ReLU (the official C-MCR CLIP<->ULIP heads). ``norm="layer"``
    puts LayerNorm where BatchNorm was. Outputs are L2-normalised."""

    def __init__(self, d_in: int, d_out: int, layers: int = 2, hidden_factor: int = 2, blocks: int = 1, bn_relu: bool = False,
                 norm: str = "batch"):
        super().__init__()
        Norm = nn.LayerNorm if norm == "layer" else nn.BatchNorm1d  # noqa: N806 (a class)
        if layers == 1:
            extra = [Norm(d_out), nn.ReLU()] if bn_relu else []
            self.net = nn.Sequential(nn.Linear(d_in, d_out), *extra)
        else:
            mods: list[nn.Module] = []
            for i in range(blocks):
                d, h = (d_in if i == 0 else d_out), hidden_factor * d_in
                mods += [nn.Linear(d, h), Norm(h), nn.ReLU(), nn.Linear(h, d_out), Norm(d_out)]
            self.net = nn.Sequential(*mods)

    @classmethod
    def of(cls, cfg: "TrainConfig", d_in: int, d_out: int) -> "Projector":
        return cls(d_in, d_out, cfg.layers, cfg.hidden_factor, cfg.blocks, cfg.bn_relu, getattr(cfg, "norm", None) or "batch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=-1)


def load_into(card, module: nn.Module, prefix: str, tensors: dict[str, torch.Tensor], method: str) -> None:
    """Load ``prefix.*`` tensors into ``module`` exactly, or say the file does not fit."""
    from ..errors import ConnectorFileError

    state = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConnectorFileError(
            f"connector {card.name!r}: weights do not fit a {method} head (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    module.eval()


def config_of(card, config_cls, method: str):
    """The card's config as ``config_cls``, on the CPU; a card this version cannot read is a
    connector-file problem, not an internal error."""
    from ..errors import ConnectorFileError

    config = card.config
    if "preset" in config_cls.model_fields and "preset" not in config:
        config = {**config, "preset": "paper"}  # written before presets: the behaviour it was trained with
    config = {**getattr(config_cls, "ABSENT_MEANS", {}), **config}  # fields added since: as the card behaved before them
    try:
        return config_cls.model_validate({**config, "device": "cpu"})
    except ValueError as e:
        msg = e.errors()[0]["msg"] if hasattr(e, "errors") else str(e)
        raise ConnectorFileError(f"connector {card.name!r}: its card's {method} config does not fit this mcrgraph ({msg})") from None
