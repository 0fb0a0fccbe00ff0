"""C-MCR (Connecting Multi-modal Contrastive Representations, arXiv 2305.14381): two
projectors map spaces A and B into a new shared space, trained only on embeddings of the
modality they share, plus optional unpaired memories of each side's other modality."""
from __future__ import annotations

from dataclasses import dataclass
import torch
from pydantic import Field

from ..store.checkpoints import Checkpointer
from ..errors import DataError
from . import Trained, TrainingData
from .losses import info_nce, memory_readout, perturb
from .common import Projector, Steps, adamw, config_of, load_into
from .inputs import InputConfig, SideInputs, bridge_items, centre_rows, centroids, head_inputs, memory_readout_on, modality_stats, with_stats
from .stored_readout import Kind, StoredReadout, memory_store
from .loop import run_epochs, split, via_retrieval

NAME = "c-mcr"
KEEPS_BASE = False  # the connected space is a new space, not space A's


def default_name(a: str, b: str) -> str:
    return f"{a}+{b}"


class Config(InputConfig):
    """C-MCR hyperparameters. The paper's exact values were not available to us; the defaults
    were chosen by measurement on the project's own benchmark (docs/architecture.md)."""

    via_mix: float | None = Field(None, ge=0, le=1, description="both-sides via: the connected space encodes the via modality by both parents, normalize(f·head_a(via_a) + (1-f)·head_b(via_b)) with f = via_mix (FreeBind's mixing); 1: through space A alone. A pinned via item still goes through its one side")

    intra_weight: float = Field(1.0, ge=0, description="λ: weight of the intra-MCR alignment (needs memories)")
    out_dim: int | None = Field(None, ge=1, description="dim of the new space; default: the larger input dim")


def _projectors(cfg: Config, dim_a: int, dim_b: int) -> tuple[Projector, Projector, int]:
    out = cfg.out_dim or max(dim_a, dim_b)
    return Projector.of(cfg, dim_a, out), Projector.of(cfg, dim_b, out), out


MEMORY = tuple(Kind("memory", "memory readout", f"side {s.upper()} memory items", "mapped ones",
                    f"memory_{s}.keys", f"memory_{s}.mapped", f"memory_{s}.reach") for s in "ab")


@dataclass
class CMCRHeads:
    a: Projector
    b: Projector
    inputs: tuple[SideInputs, SideInputs] | None = None  # centring and bridging per side
    other: tuple[Projector | None, Projector | None] = (None, None)  # heads with per-modality statistics
    via: str = ""
    memory: tuple[StoredReadout | None, StoredReadout | None] = (None, None)  # each side's memory readout

    def apply(self, side: int, modality: str, emb: torch.Tensor) -> torch.Tensor:
        head = self.a if side == 0 else self.b
        if self.other[side] is not None and modality != self.via:
            head = self.other[side]
        if self.inputs is None:
            out = head(emb)
        else:
            inputs = self.inputs[side]
            out = head(inputs.bridged(modality, emb, inputs.centred(modality, emb)))
        stored = self.memory[side]
        return stored.blend(emb, out) if stored is not None and modality != self.via else out


def load_heads(card, tensors: dict[str, torch.Tensor]) -> CMCRHeads:
    cfg = config_of(card, Config, NAME)
    a, b, _ = _projectors(cfg, card.spaces[0].dim, card.spaces[1].dim)
    load_into(card, a, "a", tensors, NAME)
    load_into(card, b, "b", tensors, NAME)
    heads = _heads(cfg, a, b, card.via, tensors)
    heads.memory = tuple(StoredReadout.of(kind, cfg, tensors, card.name) for kind in MEMORY)
    return heads


def _heads(cfg: Config, a: Projector, b: Projector, via: str, tensors: dict[str, torch.Tensor]) -> CMCRHeads:
    """The heads from trained projectors and the stored tensors, without the memory readout."""
    inputs = tuple(SideInputs.of(cfg, via, tensors, s) for s in "ab")
    other = (with_stats(a, tensors, "a"), with_stats(b, tensors, "b"))
    stats = any(o is not None for o in other)
    return CMCRHeads(a, b, inputs if cfg.centre or cfg.bridge_weight or stats else None, other, via)


def train(data: TrainingData, cfg: Config, progress: bool = False, checkpoint: Checkpointer | None = None) -> Trained:
    """Train the two projectors; returns their weights (keys ``a.*``, ``b.*``) and metrics.
    With ``checkpoint``, state is saved after epochs and a saved state is resumed exactly."""
    n = len(data.via_a)
    if n < 4:
        raise DataError(f"C-MCR needs at least 4 via items, got {n}")
    with_memory = data.memory_a is not None and data.memory_b is not None
    if (data.memory_a is None) != (data.memory_b is None):
        raise DataError("C-MCR uses memories of both sides or of neither; give a memory for each space")
    readout = memory_readout_on(cfg, with_memory, NAME, "both sides' memories")
    dev = torch.device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    fa, fb, out_dim = _projectors(cfg, data.via_a.shape[1], data.via_b.shape[1])
    fa, fb = fa.to(dev), fb.to(dev)

    val, tr = split(n, cfg.val_fraction, gen)
    ta, tb = data.via_a.to(dev), data.via_b.to(dev)
    if with_memory:  # semantic consistency: fixed for frozen encoders, so computed once
        va = memory_readout(ta, data.memory_a.to(dev), cfg.memory_temperature, threads=cfg.threads)
        vb = memory_readout(tb, data.memory_b.to(dev), cfg.memory_temperature, threads=cfg.threads)
    extra = {**centroids(cfg, data.via_a, data.memory_a, "a"), **centroids(cfg, data.via_b, data.memory_b, "b")}
    extra.update({**bridge_items(cfg, data.via_a, "a", data.memory_a), **bridge_items(cfg, data.via_b, "b", data.memory_b)})
    if cfg.centre:  # the heads learn on centred inputs, as they will see them at encode time
        ta, tb = centre_rows(ta, extra["centre_a.via"]), centre_rows(tb, extra["centre_b.via"])
        if with_memory:
            va, vb = centre_rows(va, extra.get("centre_a.other")), centre_rows(vb, extra.get("centre_b.other"))

    opt = adamw([*fa.parameters(), *fb.parameters()], cfg)
    steps_at = Steps(cfg, opt)
    bs = min(cfg.batch_size, len(tr))
    steps = len(tr) // bs  # drop the ragged last batch: BatchNorm needs >1 row

    def epoch() -> float:
        perm = tr[torch.randperm(len(tr), generator=gen)]
        total = 0.0
        for s in range(steps):
            idx = perm[s * bs : (s + 1) * bs].to(dev)
            with steps_at.autocast():
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
            steps_at.step(loss)
            total += loss.item()
        return total / max(1, steps)

    width = max(data.via_a.shape[1], data.via_b.shape[1])
    metrics = run_epochs(NAME, cfg, {"a": fa, "b": fb}, opt, gen, epoch, checkpoint, progress, width)
    if len(val):
        with torch.inference_mode():
            metrics.update(via_retrieval(fa(ta[val]), fb(tb[val])))
    tensors = {f"a.{k}": v.detach().cpu() for k, v in fa.state_dict().items()}
    tensors.update({f"b.{k}": v.detach().cpu() for k, v in fb.state_dict().items()})
    tensors.update(extra)
    if cfg.norm == "modality" and with_memory:  # AdaBN: statistics of each side's other modality, as encoded
        tensors.update(modality_stats(fa, head_inputs(cfg, extra, "a", data.memory_a.to(dev)), "a"))
        tensors.update(modality_stats(fb, head_inputs(cfg, extra, "b", data.memory_b.to(dev)), "b"))
    if readout:
        fa.eval(), fb.eval()  # as loaded for encoding: the readout's values are the connector's own encoding
        heads = _heads(cfg, fa, fb, "via", tensors)
        for side, (kind, memory) in enumerate(zip(MEMORY, (data.memory_a, data.memory_b))):
            tensors.update(memory_store(kind, memory.to(dev), lambda chunk, side=side: heads.apply(side, "other", chunk)))
    return Trained(tensors=tensors, metrics=metrics, dim=out_dim)
