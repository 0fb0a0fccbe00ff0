"""Putting pretrained weights into encoder modules, for the plugins of real encoders: exact
key checks (a checkpoint that leaves weights unloaded fails loudly instead of encoding with
random ones), seeded random init, file fingerprints and hub-cache lookups without downloading."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterable, Mapping

import torch

from ..errors import EncoderError

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def load_exact(module: torch.nn.Module, state: Mapping[str, torch.Tensor], where: str,
               ignore: Iterable[str] = ()) -> None:
    """Load ``state`` into ``module``; fail when any key is missing, left over or mis-shaped
    (keys in ``ignore`` may be absent or extra: buffers such as position ids)."""
    ignore = set(ignore)
    own = module.state_dict()
    missing = sorted(k for k in own if k not in state and k not in ignore)
    unexpected = sorted(k for k in state if k not in own and k not in ignore)
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
                    if k in own and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if keys:
                more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
                parts.append(f"{len(keys)} {label} ({', '.join(keys[:4])}{more})")
        raise EncoderError(f"{where} does not fit the model: {'; '.join(parts)}. Is it a checkpoint of this architecture?")
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


def strip_prefix(state: Mapping[str, torch.Tensor], *prefixes: str) -> dict[str, torch.Tensor]:
    """Drop a leading ``module.`` (DataParallel) or other prefix shared by every key."""
    out = dict(state)
    for p in prefixes:
        if out and all(k.startswith(p) for k in out):
            out = {k[len(p):]: v for k, v in out.items()}
    return out


@contextlib.contextmanager
def seeded(seed: int):
    """Random init that gives the same weights every time, without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def file_sha256(path: str | Path) -> str:
    """sha256 of a (large) weights file, remembered per (path, size, mtime) in this process."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key]


def hub_cached(repo_id: str, filename: str, cache_dir: str | None = None, revision: str | None = None,
               repo_type: str | None = None) -> str | None:
    """The path of ``repo_id/filename`` in the Hugging Face cache (at ``revision``, a pinned
    commit, else the one ``main`` names), or None; never downloads."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision, repo_type=repo_type)
    return found if isinstance(found, str) and os.path.isfile(found) else None


def missing_weights(what: str, env: str, example: str, cause: BaseException | None = None) -> EncoderError:
    """The error for weights that could not be had: say where to put a local copy."""
    why = f" ({type(cause).__name__}: {str(cause).splitlines()[0][:160]})" if cause else ""
    return EncoderError(
        f"{what}: the weights are not on this machine and could not be downloaded{why}. "
        f"Download them where you are online, then point mcrgraph at the file: {env}={example}"
    )


def env_overrides(**fields: str) -> dict[str, str | None]:
    """Config overrides from environment variables (``field=VARIABLE``): each one that is set
    and not empty; ``none`` (any case) gives None, which for a weights field means random init."""
    out: dict[str, str | None] = {}
    for field, var in fields.items():
        value = os.environ.get(var)
        if value:
            out[field] = None if value.lower() == "none" else value
    return out
