"""mcrgraph: join pretrained multi-modal contrastive models through the modalities they share."""
from __future__ import annotations

from .version import __version__  # noqa: E402,F401

from .hookspecs import hookimpl  # noqa: E402
from .mcr import MCR  # noqa: E402
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
from .plugins import register, unregister  # noqa: E402
from .registry import get_mcr, list_mcrs  # noqa: E402
from .encoding import embed  # noqa: E402
from .connect import connect  # noqa: E402
from .graph import MCRGraph, Path, graph  # noqa: E402
from .tasks import Classification, Hit, classify, search  # noqa: E402
from .localize import Heatmap, localize  # noqa: E402
from .index import GalleryIndex  # noqa: E402
from . import download, official  # noqa: E402,F401  (mcrgraph.official.fetch_official, mcrgraph.download.fetch)

__all__ = [
    "MCR", "hookimpl", "register", "unregister", "get_mcr", "list_mcrs", "embed", "connect",
    "graph", "MCRGraph", "Path", "MCRGraphError", "UnknownMCRError", "UnknownModalityError",
    "DuplicateMCRError", "EncoderError", "EncoderOutputError", "DataError", "ConnectorFileError",
    "ConnectorMismatchError", "StoreError", "NoPathError", "AmbiguousPathError", "ConfigError",
    "classify", "search", "Classification", "Hit", "localize", "Heatmap", "GalleryIndex",
    "DownloadError", "ChecksumError",
]
