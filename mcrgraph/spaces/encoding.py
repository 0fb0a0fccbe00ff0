"""The checked, batched, cached path from items to embeddings. Everything in mcrgraph that
needs embeddings goes through ``embed``; plugins only implement ``MCR.encode``."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from . import cache as _cache
from ..errors import ConfigError, DataError, EncoderError, EncoderOutputError, MCRGraphError
from .fingerprint import items_fingerprint
from .mcr import MCR, check_modality, split_pin
from ..io.progress import progress_bar

NORM_TOLERANCE = 1e-3


def embed(
    mcr: MCR,
    modality: str,
    items: Sequence[Any],
    *,
    batch_size: int | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> torch.Tensor:
    """Encode ``items`` of ``modality`` (``m`` or ``m@space``) with ``mcr``: float32
    (len(items), mcr.dim), rows L2-normalised. Calls ``mcr.encode`` in batches, checks every
    return, and reuses the on-disk cache when the same encoder saw the same items."""
    base = check_modality(mcr, modality)
    if split_pin(modality)[1] in (None, mcr.name):
        modality = base  # a plugin's encode() only ever sees plain modality names
    if isinstance(items, (str, bytes)):
        raise DataError(f"items must be a list, got a single {type(items).__name__}; wrap it: [{items[:40]!r}]")
    items = list(items) if not isinstance(items, (list, tuple)) else items
    if len(items) == 0:
        raise DataError(f"no items to encode for {modality!r} with {mcr.name!r}")
    cacheable = use_cache and getattr(mcr, "cache", True)
    items_fp = items_fingerprint(modality, items) if cacheable else None
    if items_fp is not None:
        encoder_fp = mcr.fingerprint()
        hit = _cache.get(encoder_fp, modality, items_fp, len(items), mcr.dim)
        if hit is not None:
            return hit
    bs = batch_size or getattr(mcr, "batch_size", 64) or 64
    out = []
    with torch.inference_mode(), progress_bar(total=len(items), desc=f"encode {modality}@{mcr.name}", unit="item", enabled=progress) as bar:
        for start in range(0, len(items), bs):
            batch = items[start : start + bs]
            out.append(_checked_encode(mcr, modality, batch))
            bar.update(len(batch))
    emb = torch.cat(out) if len(out) > 1 else out[0]
    emb = emb.clone()  # out of inference mode, so callers may train on it
    if items_fp is not None:
        _cache.put(encoder_fp, modality, items_fp, emb)
    return emb


def _checked_encode(mcr: MCR, modality: str, batch: Sequence[Any]) -> torch.Tensor:
    where = f"plugin {mcr.name!r} encoding {modality!r}"
    try:
        emb = mcr.encode(modality, batch)
    except MCRGraphError:
        raise
    except Exception as e:  # a plugin bug: name the plugin, keep the cause for --debug
        raise EncoderError(f"{where} raised {type(e).__name__}: {e}") from e
    check_embeddings(emb, len(batch), mcr.dim, where)
    return emb.detach().cpu()


def check_embeddings(emb: Any, rows: int, dim: int, where: str) -> None:
    """Raise EncoderOutputError unless ``emb`` is float32 (rows, dim), finite, unit-norm rows."""
    if not isinstance(emb, torch.Tensor):
        raise EncoderOutputError(f"{where} returned {type(emb).__name__}, expected a torch.Tensor")
    if tuple(emb.shape) != (rows, dim):
        raise EncoderOutputError(f"{where} returned shape {tuple(emb.shape)}, expected ({rows}, {dim})")
    if emb.dtype != torch.float32:
        raise EncoderOutputError(f"{where} returned dtype {emb.dtype}, expected torch.float32")
    bad = ~torch.isfinite(emb).all(dim=1)
    if bad.any():
        raise EncoderOutputError(f"{where} returned NaN or inf in {int(bad.sum())} of {rows} rows (first: row {int(bad.nonzero()[0])})")
    norms = emb.norm(dim=1)
    off = (norms - 1).abs() > NORM_TOLERANCE
    if off.any():
        i = int(off.nonzero()[0])
        raise EncoderOutputError(
            f"{where} returned rows that are not L2-normalised ({int(off.sum())} of {rows}; row {i} has norm {float(norms[i]):.4g})"
        )

def embed_dense(mcr: MCR, modality: str, items: Sequence[Any], *, batch_size: int | None = None) -> torch.Tensor:
    """Patch embeddings of ``items`` of ``modality`` (``m`` or ``m@space``) from ``mcr``:
    float32 (len(items), H, W, dim), each location's row L2-normalised. Checks the request and
    every ``encode_dense`` return, as ``embed`` does for ``encode``; not cached."""
    base = check_modality(mcr, modality)
    if split_pin(modality)[1] in (None, mcr.name):
        modality = base
    if isinstance(items, (str, bytes)):
        raise DataError(f"items must be a list, got a single {type(items).__name__}; wrap it: [{items[:40]!r}]")
    items = list(items)
    if not items:
        raise DataError(f"no items to encode for {modality!r} with {mcr.name!r}")
    if len(mcr.route(modality)) == 1 and base not in dense_of(mcr):  # a connected space asks the parent it routes to
        raise ConfigError(f"space {mcr.name!r} has no dense (patch-level) {base} features"
                          f" (it has them for: {', '.join(dense_of(mcr)) or 'nothing'})")
    bs = batch_size or getattr(mcr, "batch_size", 64) or 64
    out, grid = [], None
    where = f"plugin {mcr.name!r} encoding dense {modality!r}"
    with torch.inference_mode():
        for start in range(0, len(items), bs):
            batch = items[start : start + bs]
            try:
                emb = mcr.encode_dense(modality, batch)
            except MCRGraphError:
                raise
            except Exception as e:  # noqa: BLE001 - a plugin bug: name the plugin, keep the cause
                raise EncoderError(f"{where} raised {type(e).__name__}: {e}") from e
            if not isinstance(emb, torch.Tensor) or emb.ndim != 4 or emb.shape[0] != len(batch) or emb.shape[3] != mcr.dim:
                got = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
                raise EncoderOutputError(f"{where} returned {got}, expected a tensor ({len(batch)}, H, W, {mcr.dim})")
            if grid is not None and tuple(emb.shape[1:3]) != grid:
                raise EncoderOutputError(f"{where} returned a {tuple(emb.shape[1:3])} grid after a {grid} one; the grid must not change")
            grid = tuple(emb.shape[1:3])
            n, h, w, d = emb.shape
            check_embeddings(emb.reshape(n * h * w, d), n * h * w, d, where + " (rows are patches)")
            out.append(emb.detach().cpu())
    return (torch.cat(out) if len(out) > 1 else out[0]).clone()


def dense_of(mcr: MCR) -> tuple[str, ...]:
    """The modalities ``mcr`` gives dense features for; none when it cannot tell (a connector
    whose parent is not installed)."""
    try:
        return tuple(mcr.dense_modalities())
    except MCRGraphError:
        return ()
