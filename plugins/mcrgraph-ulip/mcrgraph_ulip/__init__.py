"""mcrgraph plugin ``ulip``: ULIP's PointBERT with its SLIP image and text towers, loaded from
the released ``pointbert_ULIP-2.pt`` (the checkpoint the official C-MCR and Ex-MCR used), as a
3D-image-text space. torch models, timm and open_clip are imported on first use."""
from __future__ import annotations

import mcrgraph

from .space import PointBertConfig, TextConfig, UlipConfig, UlipMCR

__all__ = ["PointBertConfig", "TextConfig", "UlipConfig", "UlipMCR"]


@mcrgraph.hookimpl
def register_mcrs(register):
    register(UlipMCR(UlipConfig.from_env()))


@mcrgraph.hookimpl
def weights_downloads(mcr):
    return mcr.downloads() if isinstance(mcr, UlipMCR) else None
