"""mcrgraph plugin ``clap``: LAION-CLAP (default ``630k-fusion-best.pt``, fusion on, as the
official C-MCR used) as an audio-text space. laion_clap is imported on first use."""
from __future__ import annotations

import mcrgraph

from .space import ClapConfig, ClapMCR

__all__ = ["ClapConfig", "ClapMCR"]


@mcrgraph.hookimpl
def register_mcrs(register):
    register(ClapMCR(ClapConfig.from_env()))


@mcrgraph.hookimpl
def weights_downloads(mcr):
    return mcr.downloads() if isinstance(mcr, ClapMCR) else None
