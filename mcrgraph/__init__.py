"""mcrgraph: join pretrained multi-modal contrastive models through the modalities they share."""
from __future__ import annotations

from .version import __version__  # noqa: E402,F401

from .spaces.hookspecs import hookimpl  # noqa: E402
from .spaces.mcr import MCR  # noqa: E402
from .errors import (  # noqa: E402
    AmbiguousPathError,
    ChecksumError,
    ConfigError,
    ConnectorFileError,
    ConnectorMismatchError,
    DataError,
    DownloadError,
    DuplicateMCRError,
    EncoderError,
    EncoderOutputError,
    MCRGraphError,
    NoPathError,
    StoreError,
    UnknownMCRError,
    UnknownModalityError,
)
from .spaces.plugins import register, unregister  # noqa: E402
from .spaces.registry import get_mcr, list_mcrs  # noqa: E402
from .spaces.encoding import embed  # noqa: E402
from .connect import connect  # noqa: E402
from .adapt import adapt  # noqa: E402
from .planning.graph import MCRGraph, Path, graph  # noqa: E402
from .tasks.retrieval import Classification, Hit, classify, search  # noqa: E402
from .tasks.localize import Heatmap, localize  # noqa: E402
from .ranking.index import GalleryIndex  # noqa: E402
from .fetch import download, official  # noqa: E402,F401  (mcrgraph.fetch.official.fetch_official, mcrgraph.fetch.download.fetch)

__all__ = [
    "MCR", "hookimpl", "register", "unregister", "get_mcr", "list_mcrs", "embed", "connect", "adapt",
    "graph", "MCRGraph", "Path", "MCRGraphError", "UnknownMCRError", "UnknownModalityError",
    "DuplicateMCRError", "EncoderError", "EncoderOutputError", "DataError", "ConnectorFileError",
    "ConnectorMismatchError", "StoreError", "NoPathError", "AmbiguousPathError", "ConfigError",
    "classify", "search", "Classification", "Hit", "localize", "Heatmap", "GalleryIndex",
    "DownloadError", "ChecksumError",
]

from . import compat as _compat  # noqa: E402  old module paths, with a warning

_compat.install()
