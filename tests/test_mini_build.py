"""The mini-world builder, run with --tiny into a temporary folder: shapes, dtypes, concept ids,
held-out sources, splits kept apart, and the same arrays for the same seed."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mcrgraph_mini import build_concepts, build_visual
from mcrgraph_mini.build import handwritten_blocks

KEYS = {"image": ((32, 32, 3), np.uint8), "audio": ((40, 128), np.uint8), "points": ((1024, 3), np.float16)}
HELD_OUT_VOICES = {"asterisk", "festival-kal", "festival-ked", "festival-slt"}


def _build(out: Path, *extra: str) -> float:
    start = time.time()
    r = subprocess.run([sys.executable, "-m", "mcrgraph_mini.build", "--out", str(out), "--tiny", "--quiet", *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"the builder failed (are its Debian packages installed? see the Makefile's DEBS):\n{r.stderr[-2000:]}"
    return time.time() - start


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini")
    seconds = _build(out, "--workers", "2", "--seed", "3")
    world = json.loads((out / "world.json").read_text())
    splits = {}
    for s in ("train", "memory", "heldout"):
        with np.load(out / f"{s}.npz", allow_pickle=False) as z:
            splits[s] = {k: z[k] for k in z.files}
    return {"out": out, "seconds": seconds, "world": world, **splits}


def test_world_json(tiny):
    w = tiny["world"]
    assert w["version"] == 1
    kinds = {c["kind"] for c in w["concepts"]}
    assert kinds == {"digit", "letter", "number", "emoji", "event", "shape"}
    caps = [t for c in w["concepts"] for t in c["image_captions"] + c["audio_captions"]]
    assert len(caps) == len(set(caps)), "a caption belongs to two concepts"
    for c in w["concepts"]:
        assert c["name"] and len(c["image_captions"]) >= 3
        assert len(c["audio_captions"]) >= 3 or c["kind"] == "shape"  # solids make no sound
    assert HELD_OUT_VOICES | {"event", "espeak-ng", "sklearn-digits", "font", "emoji"} <= set(w["sources"])
    for s in w["sources"].values():
        assert s["licence"] and s["origin"]
    assert w["stats"]["heldout"]["audio"]["total"] == len(tiny["heldout"]["audio"])


def test_arrays(tiny):
    n = len(tiny["world"]["concepts"])
    for split in ("train", "memory", "heldout"):
        z = tiny[split]
        expected = {f"{m}" for m in KEYS} | {f"{m}_concept" for m in KEYS}
        if split == "heldout":
            expected |= {"audio_source", "image_source"}
        assert set(z) == expected, split
        for m, (shape, dtype) in KEYS.items():
            x, lab = z[m], z[f"{m}_concept"]
            assert x.dtype == dtype and x.shape[1:] == shape and len(x) > 0, (split, m, x.shape, x.dtype)
            assert lab.dtype == np.int16 and lab.shape == (len(x),)
            assert lab.min() >= 0 and lab.max() < n
        p = z["points"].astype(np.float32)
        assert np.isfinite(p).all()
        assert np.abs(p.mean(axis=1)).max() < 0.02  # centred
        assert np.linalg.norm(p, axis=2).max() <= 1.001  # unit ball
        assert z["audio"].max() == 255  # each clip's loudest bin
    h = tiny["heldout"]
    assert h["audio_source"].dtype.kind == "U" and len(h["audio_source"]) == len(h["audio"])
    assert h["image_source"].dtype.kind == "U" and len(h["image_source"]) == len(h["image"])
    assert set(h["image_source"].tolist()) == {"sklearn-digits", "font", "emoji", "drawn"}


def test_held_out_coverage(tiny):
    w, t, h = tiny["world"], tiny["train"], tiny["heldout"]
    src = h["audio_source"]
    assert HELD_OUT_VOICES | {"event"} == set(src.tolist()), "held-out audio comes only from real, festival and event sources"
    kinds = np.array([c["kind"] for c in w["concepts"]])
    for cid in np.unique(t["audio_concept"]):
        got = set(src[h["audio_concept"] == cid].tolist())
        if kinds[cid] == "event":
            assert got == {"event"}
        else:
            assert {"festival-kal", "festival-ked", "festival-slt"} <= got, w["concepts"][cid]["name"]
            if kinds[cid] in ("digit", "letter", "number"):
                assert "asterisk" in got, w["concepts"][cid]["name"]
    star = [c["name"] for c in w["concepts"]].index("star")  # an emoji word the real voice says
    assert "asterisk" in set(src[h["audio_concept"] == star].tolist())
    for cid in np.unique(np.concatenate([t["image_concept"], tiny["memory"]["image_concept"]])):
        assert (h["image_concept"] == cid).any(), f"no held-out image of {w['concepts'][cid]['name']}"
    assert set(np.unique(t["points_concept"])) == set(np.unique(h["points_concept"]))
    # every 3d concept also has images, for (3d, image) pairs
    assert set(np.unique(t["points_concept"])) <= set(np.unique(t["image_concept"]))


def test_splits_apart(tiny):
    fonts = build_visual.FONTS
    assert not set(fonts["train"]) & set(fonts["memory"])
    assert not set(fonts["train"]) & set(fonts["heldout"])
    assert not set(fonts["memory"]) & set(fonts["heldout"])
    blocks = handwritten_blocks(1797)
    seen = set()
    for r in blocks.values():
        assert not seen & set(r)
        seen |= set(r)
    assert seen == set(range(1797))
    assert tiny["world"]["build"]["fonts"] == fonts
    # no stored item repeats across splits
    for m in ("image", "audio", "points"):
        train = {x.tobytes() for x in tiny["train"][m]}
        for other in ("memory", "heldout"):
            assert not train & {x.tobytes() for x in tiny[other][m]}, (m, other)


def test_same_seed_same_arrays_any_workers(tiny, tmp_path):
    _build(tmp_path, "--workers", "1", "--seed", "3")
    for split in ("train", "memory", "heldout"):
        with np.load(tmp_path / f"{split}.npz", allow_pickle=False) as z:
            for k in z.files:
                assert np.array_equal(z[k], tiny[split][k]), (split, k)


def test_full_concept_table():
    cs = build_concepts.concepts()
    kinds = [c.kind for c in cs]
    assert kinds.count("digit") == 10 and kinds.count("letter") == 26 and kinds.count("number") == 18
    assert kinds.count("emoji") >= 100 and kinds.count("event") >= 10
    assert all(Path(c.sound).exists() for c in cs if c.sound)


def test_trainer_runs_end_to_end_on_the_tiny_world(tiny, tmp_path):
    """Train all three spaces for a few steps, then load the written weights as MCRs."""
    from mcrgraph_mini import train
    from mcrgraph_mini.space import MiniMCR
    from mcrgraph_mini.towers import SPACES

    weights = tmp_path / "weights"
    train.main(["--data", str(tiny["out"]), "--out", str(weights), "--scale", "0.004", "--threads", "1", "--no-progress"])
    card = json.loads((weights / "card.json").read_text())
    assert set(card["spaces"]) == set(SPACES)
    held = tiny["heldout"]
    for name, mods in SPACES.items():
        stats = card["spaces"][name]
        assert stats["steps"] >= 1 and len(stats["sha256"]) == 64 and stats["held_out"]
        space = MiniMCR(name, weights=weights / f"{name}.safetensors")
        for m in mods:
            items = ["a spoken seven", "the digit 7"] if m == "text" else list(held[{"3d": "points"}.get(m, m)][:2])
            z = space.encode(m, items)
            assert z.shape == (2, space.dim) and np.allclose(z.norm(dim=1).numpy(), 1, atol=1e-5)
