"""Reading media items the way every encoder plugin takes them: sound files or waves, and
images as paths, PIL images, arrays or tensors. Plugins then do their own model-specific
preprocessing; decoding lives here once."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from ..errors import DataError
from .files import readable_file

T = TypeVar("T")


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """A sound file (wav, flac, ogg/oga, ...) -> (mono float32 wave, sample rate)."""
    import soundfile

    path = readable_file(path, "sound file")
    try:
        wave, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise DataError(f"{path}: cannot read it as a sound file ({e})") from None
    if len(wave) == 0:
        raise DataError(f"{path}: the sound file holds no samples")
    return wave.mean(axis=1), int(sr)


def resample(wave: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Polyphase resampling (scipy), exact for integer rate ratios."""
    if sr == target:
        return np.asarray(wave, dtype=np.float32)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr), int(target))
    return resample_poly(wave, target // g, int(sr) // g).astype(np.float32)


def audio_wave(item: Any, target_sr: int, default_sr: int | None = None) -> np.ndarray:
    """A path, a ``(wave, sample_rate)`` pair, or a 1-D wave at ``default_sr`` -> a mono
    float32 wave at ``target_sr``. NaN, empty and multi-dimensional waves are refused."""
    if isinstance(item, (str, Path)):
        wave, sr = read_audio(item)
    elif isinstance(item, tuple) and len(item) == 2 and np.isscalar(item[1]):
        wave, sr = np.asarray(item[0]), int(item[1])
    else:
        if default_sr is None:
            raise DataError("audio arrays need their sample rate: pass (wave, sample_rate)")
        wave, sr = np.asarray(item), default_sr
    if wave.ndim != 1 or wave.size == 0:
        raise DataError(f"an audio wave is a non-empty 1-D array, got shape {wave.shape}")
    if not np.issubdtype(wave.dtype, np.number) or not np.isfinite(wave).all():
        raise DataError("the audio wave has NaN, infinite or non-numeric samples")
    if sr <= 0:
        raise DataError(f"sample rate must be positive, got {sr}")
    return resample(wave.astype(np.float32), sr, target_sr)


def pil_image(item: Any):
    """A path, a PIL image, an (H, W[, 1|3|4]) array (uint8, or float in 0..1) or a (C, H, W)
    float tensor in 0..1 (torchvision's layout) -> an RGB PIL image; transparency sits on white."""
    from PIL import Image

    if isinstance(item, (str, Path)):
        item = readable_file(item, "image file")
        try:
            with Image.open(item) as im:
                item = im.convert("RGBA").copy()
        except (OSError, ValueError) as e:
            raise DataError(f"{item}: cannot read it as an image ({e})") from None
    if isinstance(item, Image.Image):
        im = item.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, im).convert("RGB")
    if type(item).__module__.startswith("torch"):
        t = item.detach().cpu()
        if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
            raise DataError(f"image tensors are (C, H, W) with C in 1, 3, 4; got shape {tuple(t.shape)}")
        item = t.permute(1, 2, 0).numpy()
    arr = np.asarray(item)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)) or arr.size == 0:
        raise DataError(f"image arrays are (H, W) or (H, W, 1|3|4); got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DataError("image has NaN or infinite pixels")
        arr = (np.clip(arr, 0.0, 1.0) * 255).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise DataError(f"integer image arrays must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    mode = "RGBA" if arr.shape[2] == 4 else "RGB"
    return pil_image(Image.fromarray(np.ascontiguousarray(arr), mode))


def parallel_map(fn: Callable[[Any], T], items: Sequence[Any], workers: int = 4) -> list[T]:
    """``[fn(x) for x in items]`` on a thread pool (decoding releases the GIL), in order;
    the first error is raised as it is."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def prefetched(fn: Callable[[Any], T], items: Sequence[Any], batch: int, workers: int = 4) -> Iterator[list[T]]:
    """``fn`` over ``items`` in batches of ``batch``, in order. Each batch is decoded on a
    thread pool, and the next one is queued before the current one is handed out, so it
    decodes while the caller runs the model on the current one."""
    items = list(items)
    if len(items) <= batch:
        yield parallel_map(fn, items, workers)
        return
    step = max(1, -(-batch // max(1, workers)))  # each worker takes a slice of a batch

    def submit(pool, start):
        return [pool.submit(lambda c=items[j:min(j + step, start + batch)]: [fn(x) for x in c])
                for j in range(start, min(start + batch, len(items)), step)]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        starts = list(range(0, len(items), batch))
        queued = submit(pool, starts[0])
        for i in range(len(starts)):
            current = queued
            if i + 1 < len(starts):
                queued = submit(pool, starts[i + 1])
            yield [y for f in current for y in f.result()]
