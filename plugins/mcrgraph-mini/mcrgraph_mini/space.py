"""``MiniMCR``: one of the mini spaces, its towers loaded lazily from a safetensors file."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.errors import ConnectorFileError, DataError, EncoderError

from . import features
from .text import minilm_sha256, sentence_features
from .towers import DIM, SPACES, TOWERS
from .world import bundled, bundled_fingerprint, is_bundled

WEIGHTS = Path(__file__).parent / "weights"


def inputs(modality: str, items: Sequence[Any]) -> torch.Tensor:
    """Raw items of ``modality`` -> the batch tensor its tower takes."""
    if modality == "text":
        return torch.from_numpy(sentence_features(items))
    convert = {"image": features.image_input, "audio": features.audio_input, "3d": features.points_input}[modality]
    rows = [bundled().lookup(modality, it) if is_bundled(it) else convert(it) for it in items]
    if not rows:
        raise DataError(f"no {modality} items")
    batch = np.stack(rows)
    return torch.from_numpy(batch.astype(np.float32) if modality == "3d" else batch)


def build_towers(name: str, dim: int = DIM) -> torch.nn.ModuleDict:
    return torch.nn.ModuleDict({m: TOWERS[m](dim) for m in SPACES[name]})


def load_towers(name: str, path: Path) -> torch.nn.ModuleDict:
    """Towers from a safetensors file, every key accounted for."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ConnectorFileError(f"{path}: not a readable safetensors file ({e})") from None
    towers = build_towers(name)
    missing, unexpected = towers.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConnectorFileError(f"{path}: weights do not fit {name}'s towers (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return towers.eval()


class MiniMCR(mcrgraph.MCR):
    """A mini space trained by ``python -m mcrgraph_mini.train`` on the bundled world."""

    batch_size = 256
    demo = True

    def __init__(self, name: str, weights: Path | None = None, towers: torch.nn.ModuleDict | None = None):
        self.name, self.modalities, self.dim = name, SPACES[name], DIM
        self.weights = Path(weights) if weights else WEIGHTS / f"{name}.safetensors"
        self._towers = towers
        self._in_memory = towers is not None  # towers handed in, not read from ``weights``
        self._lock = threading.Lock()

    @property
    def towers(self) -> torch.nn.ModuleDict:
        with self._lock:
            if self._towers is None:
                if not self.weights.exists():
                    raise EncoderError(f"{self.name}: no weights at {self.weights}; train them with python -m mcrgraph_mini.train")
                self._towers = load_towers(self.name, self.weights)
            return self._towers

    def weights_present(self) -> bool:
        return self._towers is not None or self.weights.is_file()

    def fingerprint(self) -> str:
        """The bundled data, the weights file's bytes (the tensors only for towers handed in without
        a file) and, for spaces with a text tower, the MiniLM weights' sha256 (checked first). It
        does not depend on whether the towers are loaded yet."""
        if "_fp" not in self.__dict__:
            h = hashlib.sha256(f"mini|{self.name}|{self.dim}|{bundled_fingerprint()}".encode())
            if self._in_memory:
                for k, v in sorted(self._towers.state_dict().items()):
                    h.update(k.encode())
                    h.update(v.detach().cpu().contiguous().numpy().tobytes())
            elif self.weights.is_file():
                h.update(self.weights.read_bytes())
            else:
                h.update(b"no weights")
            if "text" in self.modalities:
                h.update(f"|minilm:{minilm_sha256()}".encode())
            self.__dict__["_fp"] = h.hexdigest()
        return self.__dict__["_fp"]

    def encode(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        x = inputs(modality, items)
        with torch.inference_mode():
            return F.normalize(self.towers[modality](x).float(), dim=-1)

    def dense_modalities(self) -> tuple[str, ...]:
        """Images: the image tower's 8x8 map of projected conv features."""
        return tuple(m for m in self.modalities if m == "image")

    def encode_dense(self, modality: str, items: Sequence[Any]) -> torch.Tensor:
        """(len(items), 8, 8, dim) image patch embeddings, each L2-normalised; their mean
        before normalising is ``encode``'s embedding before normalising."""
        if modality not in self.dense_modalities():
            raise NotImplementedError(f"{self.name} has dense features for {', '.join(self.dense_modalities()) or 'no modality'}, not {modality}")
        x = inputs(modality, items)
        with torch.inference_mode():
            return F.normalize(self.towers[modality].dense(x).float(), dim=-1)
