"""On-disk embedding cache: one safetensors file per (encoder fingerprint, modality, items)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from ..errors import StoreError
from ..store.disk import atomic_write_bytes, cache_dir

log = logging.getLogger(__name__)


def entry_path(encoder_fp: str, modality: str, items_fp: str) -> Path:
    return cache_dir() / encoder_fp[:32] / modality / f"{items_fp[:40]}.safetensors"


def get(encoder_fp: str, modality: str, items_fp: str, rows: int, dim: int) -> torch.Tensor | None:
    path = entry_path(encoder_fp, modality, items_fp)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("embedding cache: cannot read %s (%s); recomputing", path, e.strerror)
        return None
    try:
        emb = load(data)["embeddings"]
    except (SafetensorError, KeyError, ValueError, RuntimeError) as e:
        # a damaged entry is only a lost shortcut: drop it and recompute
        log.warning("embedding cache: dropping unreadable entry %s (%s)", path, e)
        try:
            os.unlink(path)
        except OSError:
            pass
        return None
    if emb.shape != (rows, dim) or emb.dtype != torch.float32:
        log.warning("embedding cache: entry %s has shape %s, expected %s; recomputing", path, tuple(emb.shape), (rows, dim))
        return None
    return emb


def put(encoder_fp: str, modality: str, items_fp: str, emb: torch.Tensor) -> None:
    try:
        atomic_write_bytes(entry_path(encoder_fp, modality, items_fp), save({"embeddings": emb.contiguous()}))
    except StoreError as e:  # a read-only or full cache must not stop the work
        log.warning("embedding cache: not saved (%s)", e)
