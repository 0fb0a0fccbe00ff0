"""Content hashes of items and tensors: they key the embedding cache and go into cards."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch


def _hash_file(h, path: Path) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


def item_digest(h, modality: str, item: Any) -> bool:
    """Feed one item into hash ``h``; False when the item has no stable content to hash."""
    if isinstance(item, str) and modality == "text":
        h.update(b"s" + item.encode("utf-8", "surrogatepass") + b"\0")
    elif isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if path.is_file():  # media items are paths: hash what is in the file, not its name
            h.update(b"f")
            _hash_file(h, path)
        else:
            h.update(b"s" + str(item).encode("utf-8", "surrogatepass") + b"\0")
    elif isinstance(item, torch.Tensor):
        item = item.detach().cpu().contiguous()
        h.update(f"t{item.dtype}{tuple(item.shape)}".encode())
        h.update(item.numpy().tobytes() if item.dtype != torch.bfloat16 else item.float().numpy().tobytes())
    elif isinstance(item, np.ndarray):
        h.update(f"a{item.dtype}{item.shape}".encode())
        h.update(np.ascontiguousarray(item).tobytes())
    elif isinstance(item, (bytes, bytearray)):
        h.update(b"b" + bytes(item))
    elif hasattr(item, "tobytes") and hasattr(item, "size") and hasattr(item, "mode"):  # PIL image
        h.update(f"p{item.mode}{item.size}".encode())
        h.update(item.tobytes())
    else:
        return False
    return True


def items_fingerprint(modality: str, items: Sequence[Any]) -> str | None:
    """sha256 over ``items`` in order, or None when some item cannot be hashed."""
    h = hashlib.sha256(f"{modality}|{len(items)}|".encode())
    for item in items:
        if not item_digest(h, modality, item):
            return None
    return h.hexdigest()
