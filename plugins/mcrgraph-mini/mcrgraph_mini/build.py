"""Build the mini world from freely licensed signals installed on this machine:

    python -m mcrgraph_mini.build --out DIR [--tiny] [--workers N] [--seed S]

writes DIR/world.json, DIR/train.npz, DIR/memory.npz and DIR/heldout.npz. Concepts are in
``build_concepts``, sounds in ``build_audio``, pictures and point clouds in ``build_visual``;
sources and licences in ``data/SOURCES.md``. The same seed gives the same arrays whatever the
number of workers: every item has its own seed."""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import build_audio as A
from . import build_concepts as C
from . import build_visual as V
from .features import FRAMES, IMAGE_SIZE, N_MELS, POINTS

SPLITS = ("train", "memory", "heldout")
# (espeak utterances, augmented copies of each) per spoken concept, or copies per event sound
# sized so that memory.npz + heldout.npz stay near 16 MB: a noisy log-mel compresses to about
# 4.6 KB, an image to 1.5 KB, a point cloud to 5.6 KB
FULL = {
    "audio": {"train": {"digit": (40, 6), "letter": (24, 5), "number": (24, 5), "emoji": (16, 5), "event": 150},
              "memory": {"digit": (4, 4), "letter": (3, 3), "number": (3, 3), "emoji": (2, 3), "event": 8},
              "heldout": {"event": 6}},
    # images per concept (digits: printed ones, on top of scikit-learn's handwritten split)
    "image": {"train": {"digit": 80, "letter": 140, "number": 80, "emoji": 50, "event": 50, "shape": 80},
              "memory": {"digit": 8, "letter": 8, "number": 6, "emoji": 5, "event": 6, "shape": 6},
              "heldout": {"digit": 0, "letter": 6, "number": 4, "emoji": 3, "event": 4, "shape": 4}},
    "points": {"train": 40, "memory": 4, "heldout": 4},
    "handwritten": None,  # all 1797
}
TINY = {
    "audio": {"train": {"digit": (3, 2), "letter": (2, 2), "number": (2, 2), "emoji": (2, 2), "event": 4},
              "memory": {"digit": (1, 2), "letter": (1, 2), "number": (1, 2), "emoji": (1, 2), "event": 2},
              "heldout": {"event": 2}},
    "image": {"train": {"digit": 3, "letter": 4, "number": 3, "emoji": 3, "event": 3, "shape": 3},
              "memory": {"digit": 1, "letter": 2, "number": 2, "emoji": 2, "event": 2, "shape": 1},
              "heldout": {"digit": 0, "letter": 2, "number": 2, "emoji": 2, "event": 2, "shape": 1}},
    "points": {"train": 3, "memory": 2, "heldout": 2},
    "handwritten": 60,  # the first 60 of each block
}
SOURCES = {
    "sklearn-digits": {"licence": "BSD-3-Clause (scikit-learn); the data is the test set of UCI's Optical Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak), CC BY 4.0 at UCI",
                       "origin": "PyPI scikit-learn, sklearn.datasets.load_digits (1797 8x8 digits, 13 writers)"},
    "drawn": {"licence": "part of mcrgraph (made by the builder)", "origin": "shaded drawings of solids, mcrgraph_mini/build_visual.py"},
    "solid": {"licence": "part of mcrgraph (made by the builder)", "origin": "surfaces of solids sampled with numpy, mcrgraph_mini/build_visual.py"},
    "font": {"licence": "Bitstream Vera Fonts licence; DejaVu changes public domain",
             "origin": "Debian fonts-dejavu-core, fonts-dejavu-extra (/usr/share/fonts/truetype/dejavu)"},
    "emoji": {"licence": "SIL Open Font License 1.1 (font), Apache-2.0 (other files), Google Inc.",
              "origin": "Debian fonts-noto-color-emoji (NotoColorEmoji.ttf)"},
    "espeak-ng": {"licence": "GPL-3.0-or-later (the synthesiser; its speech is our output)",
                  "origin": "Debian espeak-ng, espeak-ng-data"},
    "asterisk": {"licence": "CC-BY-SA-3.0, recorded by Allison Smith, financed by Digium, Inc.",
                 "origin": "Debian asterisk-core-sounds-en-wav (/usr/share/asterisk/sounds/en, 8 kHz)"},
    "festival-kal": {"licence": "festival's free licence (MIT-style, keep notice, mark changes), Alan W Black and Kevin Lenzo 1998",
                     "origin": "Debian festival, festvox-kallpc16k (voice_kal_diphone, one synthetic male US voice)"},
    "festival-ked": {"licence": "festival's free licence (MIT-style, keep notice, mark changes), CSTR, University of Edinburgh 1997",
                     "origin": "Debian festival, festvox-kdlpc16k (voice_ked_diphone, one synthetic male US voice)"},
    "festival-slt": {"licence": "EST-2003 (free, MIT-style), Carnegie Mellon University; HTS files BSD-3-Clause",
                     "origin": "Debian festival, festvox-us-slt-hts (voice_cmu_us_slt_arctic_hts, one synthetic female US voice)"},
    "event": {"licence": "per file: CC-BY-3.0 (bell, complete, trash-empty), CC-BY-SA-3.0 (alarm-clock-elapsed, audio-volume-change, camera-shutter, power-plug, power-unplug, message, dialog-information, suspend-error; tt-monkeys from asterisk), GPL-2+ (message-new-instant, phone-*), GPL-2 (service-login, service-logout), unstated in Debian's copyright file (dialog-warning); see SOURCES.md",
              "origin": "Debian sound-theme-freedesktop (/usr/share/sounds/freedesktop/stereo), asterisk-core-sounds-en-wav (tt-monkeys.wav)"},
}


def item_seed(seed: int, *parts) -> int:
    """A 63-bit seed for one item, from the build seed and the item's name."""
    h = hashlib.sha256(repr((seed,) + parts).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


# -- jobs ---------------------------------------------------------------------------------------

JOBS = {"espeak": A.job_espeak, "event": A.job_event, "file": A.job_file, "text_image": V.job_text_image,
        "handwritten": V.job_handwritten, "emoji": V.job_emoji, "points": V.job_points,
        "shape_image": V.job_shape_image, "shape_points": V.job_shape_points}


def _init_worker():
    import torch

    torch.set_num_threads(1)


def _run(job):
    fn, args = job[0], job[1]
    return JOBS[fn](*args)


def handwritten_blocks(n_total: int, limit: int | None = None) -> dict[str, range]:
    """scikit-learn's digits split by index into contiguous train / memory / held-out blocks
    (60/20/20)."""
    a, b = int(0.6 * n_total), int(0.8 * n_total)
    blocks = {"train": range(0, a), "memory": range(a, b), "heldout": range(b, n_total)}
    if limit:
        blocks = {k: range(r.start, min(r.stop, r.start + limit)) for k, r in blocks.items()}
    return blocks


def make_jobs(concepts: list[C.Concept], plan: dict, seed: int, voices: tuple[list[str], list[str]],
              spoken: dict[str, list[tuple[str, str]]]) -> list[tuple]:
    """Every item to make, as (job name, args, split, modality, concept id, source)."""
    from sklearn.datasets import load_digits

    bases, variants = voices
    jobs: list[tuple] = []
    by_name = {c.name: i for i, c in enumerate(concepts)}
    for split in SPLITS:
        # audio
        for cid, c in enumerate(concepts):
            n = plan["audio"][split].get(c.kind)
            if not n:
                continue
            if c.kind == "event":
                seeds = [item_seed(seed, split, "event", c.name, k) for k in range(n)]
                for k in range(0, n, 10):
                    jobs.append(("event", (c.sound, seeds[k:k + 10]), split, "audio", cid, "event"))
                continue
            draws, copies = n
            for d in range(draws):
                rng = np.random.default_rng(item_seed(seed, split, "voice", c.name, d))
                v = variants[int(rng.integers(len(variants)))] if variants and rng.random() < 0.8 else ""
                voice = bases[int(rng.integers(len(bases)))] + (f"+{v}" if v else "")
                # words per minute 120-220, more of them slow: the held-out voices speak slowly
                speed, pitch = int(120 + 100 * rng.random() ** 2), int(rng.integers(20, 81))
                seeds = [item_seed(seed, split, "aug", c.name, d, k) for k in range(copies)]
                jobs.append(("espeak", (c.spoken, voice, speed, pitch, seeds), split, "audio", cid, "espeak-ng"))
        if split == "heldout":
            for source, pairs in spoken.items():
                for name, path in pairs:
                    jobs.append(("file", (path,), split, "audio", by_name[name], source))
        # images
        for cid, c in enumerate(concepts):
            n = plan["image"][split].get(c.kind, 0)
            for k in range(n):
                s = item_seed(seed, split, "image", c.name, k)
                if c.kind in ("emoji", "event"):
                    jobs.append(("emoji", (c.glyph, s), split, "image", cid, "emoji"))
                elif c.kind == "shape":
                    jobs.append(("shape_image", (c.name.split()[0], s), split, "image", cid, "drawn"))
                else:
                    fonts = V.FONTS[split]
                    texts = [c.glyph.upper(), c.glyph] if c.kind == "letter" else [c.glyph]
                    jobs.append(("text_image", (texts, fonts[k % len(fonts)], s), split, "image", cid, "font"))
        # 3d
        for cid, c in enumerate(concepts):
            if not c.has_3d:
                continue
            fonts = V.FONTS[split]
            texts = [c.glyph.upper(), c.glyph] if c.kind == "letter" else [c.glyph]
            for k in range(plan["points"][split]):
                s = item_seed(seed, split, "points", c.name, k)
                if c.kind == "shape":
                    jobs.append(("shape_points", (c.name.split()[0], s), split, "points", cid, "solid"))
                else:
                    jobs.append(("points", (texts, fonts[k % len(fonts)], s), split, "points", cid, "font"))
    # scikit-learn's handwritten digits, split by index
    digits = load_digits()
    ids = {c.glyph: i for i, c in enumerate(concepts) if c.kind == "digit"}
    for split, block in handwritten_blocks(len(digits.target), plan["handwritten"]).items():
        for i in block:
            g = str(int(digits.target[i]))
            if g in ids:
                jobs.append(("handwritten", (digits.images[i], item_seed(seed, split, "handwritten", i)), split, "image", ids[g], "sklearn-digits"))
    return jobs


def run_jobs(jobs: list[tuple], workers: int, quiet: bool = False) -> list:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="mini world", unit="item", disable=quiet, file=sys.stderr, mininterval=1.0)
    out = []
    # the slow espeak jobs first, so both workers stay busy to the end; results keep job order
    order = sorted(range(len(jobs)), key=lambda i: (jobs[i][0] not in ("espeak", "event"), i))
    todo = [jobs[i][:2] for i in order]
    if workers <= 1:
        _init_worker()
        results = map(_run, todo)
        pool = None
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pool = ctx.Pool(workers, initializer=_init_worker)
        results = pool.imap(_run, todo, chunksize=4)
    try:
        for r in results:
            out.append(r)
            bar.update(1)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        bar.close()
    back = [None] * len(jobs)
    for i, r in zip(order, out):
        back[i] = r
    return back


def assemble(jobs: list[tuple], results: list) -> dict[str, dict[str, np.ndarray]]:
    parts = {s: {"image": [], "audio": [], "points": []} for s in SPLITS}
    for job, res in zip(jobs, results):
        _, _, split, modality, cid, source = job
        items = res if isinstance(res, list) else [res]
        parts[split][modality].extend((x, cid, source) for x in items)
    shapes = {"image": ((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8), "audio": ((N_MELS, FRAMES), np.uint8), "points": ((POINTS, 3), np.float16)}
    out = {}
    for split in SPLITS:
        arrays = {}
        for modality, rows in parts[split].items():
            shape, dtype = shapes[modality]
            arrays[modality] = np.stack([r[0] for r in rows]).astype(dtype) if rows else np.zeros((0, *shape), dtype)
            arrays[f"{modality}_concept"] = np.array([r[1] for r in rows], dtype=np.int16)
            if split == "heldout" and modality != "points":
                arrays[f"{modality}_source"] = np.array([r[2] for r in rows], dtype=str)
        out[split] = arrays
    return out


def stats(concepts: list[C.Concept], arrays: dict) -> dict:
    kinds = np.array([c.kind for c in concepts])
    st: dict = {"concepts": len(concepts), "concepts_per_kind": dict(collections.Counter(kinds.tolist()))}
    for split, arr in arrays.items():
        st[split] = {}
        for m in ("image", "audio", "points"):
            lab = arr[f"{m}_concept"].astype(int)
            st[split][m] = {"total": int(len(lab)), **dict(sorted(collections.Counter(kinds[lab].tolist()).items()))}
        if "audio_source" in arr:
            st[split]["audio_sources"] = dict(sorted(collections.Counter(arr["audio_source"].tolist()).items()))
            st[split]["image_sources"] = dict(sorted(collections.Counter(arr["image_source"].tolist()).items()))
    return st


def held_out_voices(concepts: list[C.Concept], workers: int, folder: Path) -> dict[str, list[tuple[str, str]]]:
    """The held-out speech: the asterisk recordings and the festival voices -> {source: [(concept name, wav path)]}."""
    out: dict[str, list[tuple[str, str]]] = {"asterisk": []}
    for c in concepts:
        for rel in c.asterisk:
            path = Path(C.ASTERISK) / f"{rel}.wav"
            if not path.exists():
                raise A.BuildError(f"{path} is missing: apt-get install asterisk-core-sounds-en-wav")
            out["asterisk"].append((c.name, str(path)))
    said = [c for c in concepts if c.festival]
    waves = A.festival_all({src: [c.festival for c in said] for src in A.FESTIVAL_VOICES}, folder, workers)
    for src, paths in waves.items():
        out[src] = [(c.name, str(p)) for c, p in zip(said, paths)]
    return out


def build(out: Path, tiny: bool = False, workers: int = 2, seed: int = 0, quiet: bool = False) -> dict:
    start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    missing = V.missing_files() + [c.sound for c in C.concepts(tiny) if c.sound and not Path(c.sound).exists()]
    if missing:
        raise A.BuildError("missing input files (install fonts-dejavu-core fonts-dejavu-extra fonts-noto-color-emoji "
                           "sound-theme-freedesktop asterisk-core-sounds-en-wav): " + ", ".join(missing[:5]))
    concepts = C.concepts(tiny)
    plan = TINY if tiny else FULL
    voices = A.usable_voices()
    with A.temp_folder() as tmp:
        spoken = held_out_voices(concepts, workers, Path(tmp))
        t_voices = time.time() - start
        jobs = make_jobs(concepts, plan, seed, voices, spoken)
        results = run_jobs(jobs, workers, quiet)
    arrays = assemble(jobs, results)
    for split in SPLITS:
        np.savez_compressed(out / f"{split}.npz", **arrays[split])
    st = stats(concepts, arrays)
    st["seconds"] = {"voices_and_festival": round(t_voices, 1), "total": round(time.time() - start, 1)}
    st["bytes"] = {f"{s}.npz": (out / f"{s}.npz").stat().st_size for s in SPLITS}
    world = {
        "version": 1,
        "concepts": [c.public() for c in concepts],
        "sources": SOURCES,
        "stats": st,
        "build": {"seed": seed, "tiny": tiny, "espeak_bases": voices[0], "espeak_variants": voices[1],
                  "fonts": V.FONTS, "handwritten_blocks": {k: [r.start, r.stop] for k, r in
                                                           handwritten_blocks(1797, plan["handwritten"]).items()}},
    }
    (out / "world.json").write_text(json.dumps(world, indent=1, ensure_ascii=False) + "\n")
    return world


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mcrgraph_mini.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder to write world.json and the .npz splits into")
    p.add_argument("--tiny", action="store_true", help="a few concepts and variants (for tests)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    try:
        world = build(a.out, a.tiny, max(1, a.workers), a.seed, a.quiet)
    except A.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    st = world["stats"]
    for split in SPLITS:
        print(f"{split}: " + "; ".join(f"{m} {st[split][m]['total']}" for m in ("image", "audio", "points")))
    print(f"{st['concepts']} concepts {st['concepts_per_kind']}; {st['seconds']['total']} s; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
