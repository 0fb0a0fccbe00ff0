"""Everything an encoder plugin needs, in one import: ``from mcrgraph.plugin import PretrainedMCR, hookimpl, ...``.

The clip, clap and ulip plugins use only this module (tests/test_layers.py checks it), so the
package's folders can move without breaking a plugin. docs/plugins.md describes each name.
"""
from __future__ import annotations

from .errors import ConnectorFileError, DataError, DownloadError, EncoderError, MCRGraphError
from .fetch.download import Download
from .io.media import audio_wave, parallel_map, pil_image, prefetched, read_audio, resample
from .io.pointcloud import load_point_cloud
from .io.progress import progress_bar
from .spaces.hookspecs import hookimpl
from .spaces.mcr import MCR
from .spaces.pretrained import PretrainedMCR, check_texts
from .store.galleries import GallerySource
from .store.safeload import load_torch_weights, numpy_scalar_globals
from .store.weights import env_overrides, file_sha256, hub_cached, load_exact, missing_weights, seeded, strip_prefix

__all__ = [
    # spaces
    "MCR", "PretrainedMCR", "check_texts", "hookimpl",
    # built-in galleries (the default_galleries hook)
    "GallerySource",
    # weights: declaring, finding, loading
    "Download", "hub_cached", "env_overrides", "missing_weights", "load_torch_weights", "numpy_scalar_globals", "load_exact",
    "strip_prefix", "seeded", "file_sha256",
    # reading items
    "read_audio", "resample", "audio_wave", "pil_image", "load_point_cloud", "parallel_map", "prefetched",
    "progress_bar",
    # errors
    "MCRGraphError", "EncoderError", "DataError", "ConnectorFileError", "DownloadError",
]
