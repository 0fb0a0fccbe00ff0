"""mcrgraph plugin ``clip``: an open_clip model (default ViT-B-32 with OpenAI's weights, the
space the official C-MCR used) as an image-text space. open_clip is imported on first use."""
from __future__ import annotations

import mcrgraph

from .space import ClipConfig, ClipMCR

__all__ = ["ClipConfig", "ClipMCR"]


@mcrgraph.hookimpl
def register_mcrs(register):
    register(ClipMCR(ClipConfig.from_env()))


@mcrgraph.hookimpl
def weights_downloads(mcr):
    return mcr.downloads() if isinstance(mcr, ClipMCR) else None
