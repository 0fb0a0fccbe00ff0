"""A corpus's domain offset (issue 25): how far a user's recordings (a microphone, real voices)
sit from the memory a connector was trained on, measured without labels, so that a connected
space can move them before its heads see them (``mcrgraph.adapt``).

    offset = mean_x (mean of x's k nearest memory items - x) - mean_m (the same for m, without itself)

Averaged over a corpus, what a recording's neighbours share with it (its concept) cancels and what
the recordings share (speaker, channel) stays: the correction step of mutual-nearest-neighbour batch
correction (Haghverdi et al., Nature Biotechnology 2018). The second term is the part every point
has (a mean of neighbours is shorter than a unit vector and lies inward), so a corpus drawn from the
memory's own distribution gets about zero. An item is then encoded as normalize(x + offset)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import DataError

ROWS = 2048  # similarity rows at a time: memory stays flat for a large corpus


def nearest_mean(queries: torch.Tensor, memory: torch.Tensor, k: int, skip_self: bool = False) -> torch.Tensor:
    """Each query row's mean over its ``k`` most similar memory rows (dot product of unit rows);
    with ``skip_self`` the queries are the memory and a row is not its own neighbour."""
    out = torch.empty(len(queries), memory.shape[1], dtype=memory.dtype)
    for start in range(0, len(queries), ROWS):
        s = queries[start : start + ROWS] @ memory.T
        if skip_self:
            rows = torch.arange(len(s))
            s[rows, rows + start] = -torch.inf
        out[start : start + len(s)] = memory[s.topk(k, dim=1).indices].mean(1)
    return out


def domain_offset(corpus: torch.Tensor, memory: torch.Tensor, neighbours: int = 10) -> torch.Tensor:
    """The offset (one row of the space's dim, float32) of ``corpus`` to ``memory``, both unit
    embeddings of one space and modality (module docstring)."""
    for what, t in (("corpus", corpus), ("memory", memory)):
        if t.dim() != 2 or not len(t):
            raise DataError(f"domain offset: the {what} must be a non-empty 2-D array of embeddings, got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise DataError(f"domain offset: the {what}'s embeddings hold NaN or inf")
    if corpus.shape[1] != memory.shape[1]:
        raise DataError(f"domain offset: the corpus has dim {corpus.shape[1]} but the memory {memory.shape[1]}; embed both with the same space")
    if not 1 <= neighbours < len(memory):
        raise DataError(f"domain offset: {neighbours} neighbours needs a memory of more than {neighbours} items, got {len(memory)}")
    corpus, memory = F.normalize(corpus.double(), dim=1), F.normalize(memory.double(), dim=1)  # sums of thousands of rows
    own = (nearest_mean(memory, memory, neighbours, skip_self=True) - memory).mean(0)
    return ((nearest_mean(corpus, memory, neighbours) - corpus).mean(0) - own).float()


def shift(embeddings: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """``normalize(x + offset)`` row by row, in the embeddings' dtype."""
    return F.normalize(embeddings.float() + offset.to(embeddings.device).float(), dim=-1).to(embeddings.dtype)
