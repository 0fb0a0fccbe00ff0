"""AVE (Audio-Visual Event localization, Tian et al. 2018), test split: audio->image retrieval by
event category, and counterfactual audio-image recognition."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .common import AUDIO_EXTS, IMAGE_EXTS, Report, Scorer, check_limit, find_media, hint, not_empty, read_lines, retrieval_rows, root_dir, split_file

VIDEO_SECONDS = 10  # every AVE video is 10 s long


@dataclass
class AVESplit:
    videos: list[str]
    categories: list[str]
    audio: list[str]
    frames: list[str]
    info: dict = field(default_factory=dict)


def _frame(r: Path, vid: str, start: float, end: float) -> Path | None:
    """``frames/<id>.jpg``, else the frame of ``frames/<id>/`` (sorted by name, spread evenly
    over the 10 s video) at the middle of the annotated event."""
    single = find_media([r / "frames"], (vid,), IMAGE_EXTS)
    if single is not None:
        return single
    folder = r / "frames" / vid
    if not folder.is_dir():
        return None
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
    if not frames:
        return None
    middle = (start + end) / 2 / VIDEO_SECONDS
    return frames[min(int(middle * len(frames)), len(frames) - 1)]


def load_ave(root, limit: int | None = None) -> AVESplit:
    """``testSet.txt`` (Category&VideoID&Quality&StartTime&EndTime, first line a header),
    ``audio/<VideoID>.wav`` and ``frames/<VideoID>/*.jpg`` (or ``frames/<VideoID>.jpg``),
    extracted from ``AVE/<VideoID>.mp4``. Every test video must have both."""
    r = root_dir(root, "AVE", "testSet.txt, audio/ and frames/")
    test_path = split_file(r, ("testSet.txt", "AVE_Dataset/testSet.txt"), "AVE", "the test split file")
    if test_path.parent != r:
        r = test_path.parent
    videos, cats, audio, frames = [], [], [], []
    for n, line in read_lines(test_path):
        parts = [p.strip() for p in line.split("&")]
        if n == 1 and parts[0].lower() == "category":
            continue  # the header
        if len(parts) != 5:
            raise DataError(f"{test_path}: line {n} has {len(parts)} fields separated by '&'; expected "
                            "Category&VideoID&Quality&StartTime&EndTime")
        cat, vid, _, start, end = parts
        try:
            s, e = float(start), float(end)
        except ValueError:
            raise DataError(f"{test_path}: line {n}: StartTime and EndTime must be seconds, got {start!r} and {end!r}") from None
        if not cat or not vid or not 0 <= s < e <= VIDEO_SECONDS:
            raise DataError(f"{test_path}: line {n}: needs a category, a video id and 0 <= StartTime < EndTime <= {VIDEO_SECONDS}")
        a = find_media([r / "audio"], (vid,), AUDIO_EXTS)
        f = _frame(r, vid, s, e)
        if a is None or f is None:
            what = "audio/<id>.wav" if a is None else "frames/<id>/*.jpg"
            raise DataError(f"{test_path}: line {n}: video {vid!r} has no {what} under {r}; extract the audio and frames "
                            f"of AVE/{vid}.mp4 ({hint('ave')})")
        videos.append(vid)
        cats.append(cat)
        audio.append(str(a))
        frames.append(str(f))
    not_empty(videos, "AVE", test_path, "videos")
    if check_limit(limit) and limit < len(videos):
        videos, cats, audio, frames = videos[:limit], cats[:limit], audio[:limit], frames[:limit]
    info = {"split file": str(test_path), "videos": len(videos), "categories": len(set(cats))}
    return AVESplit(videos, cats, audio, frames, info)


def counterfactual(sim: torch.Tensor, categories, seed: int = 0) -> dict[str, float]:
    """Counterfactual audio-image recognition from ``sim`` (audio x frame cosines of the same
    videos, in order). For video v with frame f_v, the true pair (a_v, f_v) is set against
    (a_u, f_v), u a video of another category: a success when the true pair scores higher, half
    of one on a tie. ``one negative``: u drawn once per video (seeded); ``every negative``:
    averaged over every other-category u."""
    cats = np.asarray(categories)
    n = len(cats)
    true = sim.diagonal()  # s(a_v, f_v)
    other = torch.as_tensor(cats[:, None] != cats[None, :])  # [v, u]: u's category differs
    wins = (true[:, None] > sim.T).double() + 0.5 * (true[:, None] == sim.T).double()  # [v, u]: s(a_v,f_v) vs s(a_u,f_v)
    has = other.any(dim=1)
    if not has.any():
        raise DataError("AVE counterfactual recognition needs videos of at least two categories")
    every = ((wins * other).sum(dim=1)[has] / other.sum(dim=1)[has]).mean().item()
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(cats != cats[v])) for v in range(n) if has[v]]
    one = wins[torch.nonzero(has).flatten(), torch.as_tensor(picks)].mean().item()
    return {"one negative": one, "every negative": every, "videos": int(has.sum())}


def evaluate_ave(split: AVESplit, scorer: Scorer, seed: int = 0) -> Report:
    sim = scorer.similarity("audio", split.audio, "image", split.frames)
    cats = sorted(set(split.categories))
    labels = [cats.index(c) for c in split.categories]
    rows = retrieval_rows(sim, labels, labels, ks=(1, 5))
    cf = counterfactual(sim, split.categories, seed=seed)
    count = {"videos": cf["videos"]}
    tables = {
        "AVE: audio->image retrieval (relevant: same event category)": rows,
        "AVE: counterfactual audio-image recognition (accuracy)": {
            "chance": {"one negative": 0.5, "every negative": 0.5} | count,
            "result": {"one negative": cf["one negative"], "every negative": cf["every negative"]} | count,
        },
    }
    return Report("AVE", tables, dict(split.info) | {"seed": seed})
