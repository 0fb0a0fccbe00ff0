"""A base for spaces of real pretrained encoders (the clip, clap and ulip plugins): the model is
built on first use, once, under a lock; the fingerprint names the architecture and the weights
without building anything."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Container, Sequence

from ..errors import DataError
from .mcr import MCR
from ..store.weights import file_sha256


def weights_id(source: str | None, seed: int, released: Container[str] = ()) -> str:
    """What a fingerprint says about the weights. None: ``random-init|seed``. A published name
    (a pretrained tag, a released checkpoint's file name) names fixed weights, downloaded or not
    yet: ``released|name``, so a connector made before the download still fits after it. Any
    other file: its sha256."""
    if source is None:
        return f"random-init|{seed}"
    p = Path(source).expanduser()
    if source in released or p.name in released:
        return f"released|{p.name}"
    return file_sha256(p) if p.is_file() else f"missing:{p}"


def check_texts(space: str, items: Sequence[Any]) -> list[str]:
    bad = [i for i, t in enumerate(items) if not isinstance(t, str)]
    if bad:
        raise DataError(f"{space}: text items are strings; item {bad[0]} is a {type(items[bad[0]]).__name__}")
    return list(items)


class PretrainedMCR(MCR):
    """Subclasses set ``family`` and implement ``build()`` (-> whatever ``encode`` needs, e.g.
    ``(model, preprocess, tokenizer)``), ``architecture()`` (a string that changes with
    anything that changes the outputs, other than the weights) and ``weights_source()``."""

    family = ""
    released: Container[str] = ()

    def __init__(self, config):
        self.config = config
        self.name = config.name
        self._parts = None
        self._lock = threading.Lock()

    def build(self):
        raise NotImplementedError

    def architecture(self) -> str:
        raise NotImplementedError

    def weights_source(self) -> tuple[str | None, int]:
        """(checkpoint file, tag or released name, or None for random init; the init seed)."""
        raise NotImplementedError

    def parts(self):
        with self._lock:
            if self._parts is None:
                self._parts = self.build()
            return self._parts

    def fingerprint(self) -> str:
        if "_fp" not in self.__dict__:
            source, seed = self.weights_source()
            blob = f"{self.family}|{self.architecture()}|{self.dim}|{weights_id(source, seed, self.released)}"
            self.__dict__["_fp"] = hashlib.sha256(blob.encode()).hexdigest()
        return self.__dict__["_fp"]
