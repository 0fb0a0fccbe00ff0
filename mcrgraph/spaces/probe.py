"""Does a space work? Load it and encode one built-in sample item of each of its modalities,
checking what comes back (one row of the space's width, finite, unit length). ``mcrgraph
download`` runs it on what it fetched and ``mcrgraph plugins --check`` on demand, so that a user
learns that a file is unusable when it arrives, not at the first connect."""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import MCRGraphError

# float32 rows summed over d terms carry a relative error of at most d * 2**-24 in the squared
# norm (d = 4096 gives 2.4e-4), so half that in the norm; 1e-3 leaves room and still catches an
# unnormalised row.
NORM_TOLERANCE = 1e-3


def _image(path: Path) -> str:
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)  # a gradient: not blank, not noise
    Image.fromarray(rgb, "RGB").save(path / "sample.png")
    return str(path / "sample.png")


def _audio(path: Path) -> str:
    import numpy as np
    import soundfile

    sr = 48_000
    t = np.arange(sr) / sr
    soundfile.write(path / "sample.wav", (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t)).astype(np.float32), sr)  # a 1 s bell-like tone
    return str(path / "sample.wav")


def _points(path: Path) -> str:
    import numpy as np

    p = np.random.default_rng(0).standard_normal((2048, 3))
    np.save(path / "sample.npy", (p / np.linalg.norm(p, axis=1, keepdims=True) * [1.0, 0.5, 0.25]).astype(np.float32))  # an ellipsoid
    return str(path / "sample.npy")


# Media samples are files, the item form every plugin reads (arrays and pairs vary between plugins).
SAMPLES: dict[str, Callable[[Path], Any]] = {
    "text": lambda path: "a dog barks in the rain",
    "image": _image,
    "audio": _audio,
    "3d": _points,
}


@dataclass(frozen=True)
class Probe:
    modality: str
    ok: bool | None      # None: not checked (no sample item of this modality)
    seconds: float
    detail: str = ""


def check_space(mcr) -> list[Probe]:
    """One probe per modality of ``mcr``, in order; the first one also pays for loading the
    weights. Encodes directly (nothing goes into the embedding cache)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="mcrgraph-probe-") as folder:
        for modality in mcr.modalities:
            out.append(_probe(mcr, modality, Path(folder)))
    return out


def _probe(mcr, modality: str, folder: Path) -> Probe:
    make = SAMPLES.get(modality)
    if make is None:
        return Probe(modality, None, 0.0, "no sample item of this modality")
    start = time.perf_counter()
    try:
        rows = mcr.encode(modality, [make(folder)])
        problem = _problem(rows, mcr.dim)
    except MCRGraphError as e:
        problem = str(e)
    except Exception as e:  # noqa: BLE001 - a plugin's own failure, reported as such
        problem = f"{type(e).__name__}: {e}"
    return Probe(modality, problem is None, time.perf_counter() - start, problem or "")


def _problem(rows, dim: int) -> str | None:
    import torch

    if not isinstance(rows, torch.Tensor):
        return f"encode returned a {type(rows).__name__}, not a tensor"
    if tuple(rows.shape) != (1, dim):
        return f"encode returned shape {tuple(rows.shape)} for one item, expected (1, {dim})"
    rows = rows.float()
    if not torch.isfinite(rows).all():
        return "the embedding holds NaN or infinite values"
    norm = float(rows.norm())
    if not math.isfinite(norm) or abs(norm - 1.0) > NORM_TOLERANCE:
        return f"the embedding's length is {norm:.4g}, not 1"
    return None


def summary(name: str, probes: list[Probe]) -> str:
    """One line: what was encoded and how long it took, or what failed."""
    failed = [p for p in probes if p.ok is False]
    if failed:
        return f"{name}: FAILED: " + "; ".join(f"{p.modality}: {p.detail}" for p in failed)
    done = [p.modality for p in probes if p.ok]
    skipped = [p.modality for p in probes if p.ok is None]
    line = (f"{name}: works: loaded, and encoded one item of each modality ({', '.join(done)}) as a unit row "
            f"in {sum(p.seconds for p in probes):.1f} s") if done else f"{name}: nothing checked"
    return line + (f"; no sample item for {', '.join(skipped)}" if skipped else "")
