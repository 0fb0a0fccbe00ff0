"""Loading weight files that come from elsewhere, without ever running code from them.

Our own files are safetensors. A foreign ``.pt``/``.pth``/``.ckpt`` (e.g. an official
checkpoint) is read with ``torch.load(weights_only=True)``: tensors and plain containers
only; a file that needs anything else (a pickled object) is refused, never executed."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import ConnectorFileError


def load_torch_weights(path: str | Path, allow: Sequence[Any] = ()) -> dict:
    """The state dict (or dict of tensors) in a torch checkpoint, loaded safely. ``allow``:
    harmless classes a known checkpoint format pickles besides tensors (ULIP saves its
    ``argparse.Namespace`` of training arguments; numpy scalars: ``numpy_scalar_globals()``),
    admitted by name, each an object or an (object, pickled name) pair; anything else is refused,
    never run (there is no fallback to ``weights_only=False``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConnectorFileError(f"{path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise ConnectorFileError(f"{path} is not a readable safetensors file ({e})") from None
    try:
        with torch.serialization.safe_globals(list(allow)):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" not in str(e).lower():  # bad opcodes: not a pickle at all, nothing was refused
            raise ConnectorFileError(f"{path} is not a readable torch checkpoint (UnpicklingError: {str(e).splitlines()[-1][:160]})") from None
        raise ConnectorFileError(
            f"refused to load {path}: it holds Python objects, not only weights, and unpickling them could run code"
            f"{_refused(path, e, allow)}. If you trust its source, convert it to safetensors yourself"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, AttributeError) as e:
        raise ConnectorFileError(f"{path} is not a readable torch checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(obj, dict):
        raise ConnectorFileError(f"{path} holds a {type(obj).__name__}, expected a dict of tensors (a state dict)")
    return obj


def numpy_scalar_globals() -> list:
    """What a checkpoint pickles for a numpy scalar, as ``allow`` for ``load_torch_weights``: a
    training script's learning rate or metric kept as ``np.float64`` (laion_clap's cosine schedule
    sets the optimizer's lr with ``np.cos``; ULIP's metrics) pickles numpy's ``scalar``
    constructor and ``numpy.dtype``, whose state needs the dtype's class (``Float64DType``).

    ``scalar`` is admitted under both names it is pickled by: ``numpy.core.multiarray.scalar``
    (numpy 1.x, every released checkpoint) and ``numpy._core.multiarray.scalar`` (numpy 2.x). Each
    is an (object, pickled name) pair, as torch matches names, and under numpy 2 the object's own
    module is ``numpy._core``, which would never match a file written by numpy 1. Empty without numpy."""
    try:
        import numpy as np
    except ImportError:
        return []
    try:
        from numpy._core.multiarray import scalar  # numpy 2, and numpy 1.26's forward-compatible alias
    except ImportError:
        from numpy.core.multiarray import scalar
    out: list = [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"), (np.dtype, "numpy.dtype")]
    return out + [type(np.dtype(t)) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")]


def _refused(path: Path, error: Exception, allow: Sequence[Any]) -> str:
    """`` (pickled a.b, c.d)``: the globals the load refused, read from the pickle without running it."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - an old torch, or not a zip checkpoint: fall back to the error's text
        names = []
    allowed = {g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}" for g in allow}
    names = [n for n in names if n not in allowed]
    if names:
        return f" (pickled {', '.join(names[:5])})"
    lines = [l.strip() for l in str(error).splitlines() if "Unsupported" in l or "unsupported" in l]
    return f" ({lines[0].split('Unsupported', 1)[-1].strip(' :')[:120]})" if lines else ""
