"""Connector methods. Each module exposes ``NAME``, ``KEEPS_BASE`` (True when the connected
space lives in space A's coordinates), ``default_name(a, b)``, ``Config`` (pydantic),
``train(data, config, progress, checkpoint) -> Trained`` and ``load_heads(card, tensors) -> Heads``.
May import: io, store, ranking (and errors): methods train on tensors and know nothing of spaces."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

import torch

from ..errors import ConfigError

METHODS = {"c-mcr": "mcrgraph.methods.cmcr", "ex-mcr": "mcrgraph.methods.exmcr"}


@dataclass
class TrainingData:
    """Cached embeddings a method trains on: the via items in both spaces (row i of ``via_a``
    and of ``via_b`` is the same item), and optional unpaired memories of each side."""

    via_a: torch.Tensor
    via_b: torch.Tensor
    memory_a: torch.Tensor | None = None
    memory_b: torch.Tensor | None = None


@dataclass
class Trained:
    tensors: dict[str, torch.Tensor]
    metrics: dict[str, float] = field(default_factory=dict)
    dim: int = 0


class Heads(Protocol):
    def apply(self, side: int, modality: str, emb: torch.Tensor) -> torch.Tensor:
        """Map embeddings of ``modality`` from space ``side`` (0 = A, 1 = B) into the new space."""


def get_method(name: str) -> ModuleType:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return importlib.import_module(METHODS[name])
