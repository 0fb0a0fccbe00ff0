"""Extraction through a real encoder: a random-init open_clip ViT-B-32 (the clip plugin with
``pretrained=None``; the weights do not change the cost) encoding image files.

- raw: ``model.encode_image`` on ready, preprocessed tensors, batches of the plugin's size;
- library, cold: ``mcrgraph.embed(clip, "image", paths)`` with an empty cache: decoding and
  preprocessing on the plugin's thread pool, batching, the forward, checks, the cache write;
- library, cache hit: the same call again (the embeddings come from the on-disk cache);
- decode + preprocess alone (what the library adds before the forward), for the breakdown.

overhead = library cold time / raw time - 1. ``python -m benchmarks.extraction [--images 96]``
prints a Markdown table; ``python -m benchmarks`` runs it as one stage. Raw and library runs
alternate (the machine's speed drifts by several percent over a minute)."""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np
import torch

from .common import median_time


def make_images(folder: str, n: int, seed: int = 0) -> list[str]:
    """``n`` 320x240 JPEGs of smooth random colour fields (real files to decode)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((320, 240), Image.BICUBIC)
        p = os.path.join(folder, f"img{i:04d}.jpg")
        im.save(p, quality=90)
        paths.append(p)
    return paths


def run(n_images: int = 96, repeats: int = 3) -> dict:
    import mcrgraph
    from mcrgraph.io.media import parallel_map, pil_image
    from mcrgraph_clip import ClipConfig, ClipMCR

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(tmp, n_images)
        clip = ClipMCR(ClipConfig(pretrained=None))
        model, preprocess, _ = clip.parts()
        bs = clip.config.batch_size  # one forward pass

        def decode():
            return torch.stack(parallel_map(lambda p: preprocess(pil_image(p)), paths, clip.config.workers))

        ready = decode()

        def raw():
            with torch.inference_mode():
                for i in range(0, n_images, bs):
                    model.encode_image(ready[i:i + bs])

        homes = iter(range(10 ** 6))
        old_home = os.environ.get("MCRGRAPH_HOME")

        def cold():
            os.environ["MCRGRAPH_HOME"] = os.path.join(tmp, f"home{next(homes)}")
            return mcrgraph.embed(clip, "image", paths)

        try:
            raw(), cold()  # warm-up of both paths
            # raw and library runs alternate, so that a slow spell of the machine hits both
            pairs = [(median_time(raw, 1, warmup=0), median_time(cold, 1, warmup=0)) for _ in range(repeats)]
            t_raw = statistics.median(p[0] for p in pairs)
            t_cold = statistics.median(p[1] for p in pairs)
            t_decode = median_time(decode, repeats)
            os.environ["MCRGRAPH_HOME"] = os.path.join(tmp, "hit")
            mcrgraph.embed(clip, "image", paths)
            t_hit = median_time(lambda: mcrgraph.embed(clip, "image", paths), repeats)
        finally:
            if old_home is None:
                os.environ.pop("MCRGRAPH_HOME", None)
            else:
                os.environ["MCRGRAPH_HOME"] = old_home
    return {"images": n_images, "batch_size": bs, "workers": clip.config.workers, "threads": torch.get_num_threads(),
            "raw_s": t_raw, "decode_s": t_decode, "cold_s": t_cold, "hit_s": t_hit,
            "overhead": t_cold / t_raw - 1.0, "pairs": pairs, "repeats": repeats}


def markdown(r: dict) -> str:
    n = r["images"]
    rows = [
        ("raw forward on ready tensors (baseline)", r["raw_s"], "1.00"),
        ("library encode path, empty cache", r["cold_s"], f"{r['cold_s'] / r['raw_s']:.2f}"),
        ("library encode path, cache hit", r["hit_s"], f"{r['hit_s'] / r['raw_s']:.3f}"),
        ("decode + preprocess alone", r["decode_s"], f"{r['decode_s'] / r['raw_s']:.2f}"),
    ]
    lines = [f"ViT-B-32 (random init), {n} JPEG files 320x240, batches of {r['batch_size']}, "
             f"{r['workers']} decode threads, {r['threads']} torch threads; medians of {r.get('repeats', '?')} runs, raw and "
             f"library runs alternating. Each pair (raw s, library s): "
             + ", ".join(f"({a:.2f}, {b:.2f})" for a, b in r.get("pairs", [])) + "\n",
             "| path | seconds | items/s | vs raw |", "|---|---|---|---|"]
    lines += [f"| {name} | {t:.2f} | {n / t:.1f} | {ratio} |" for name, t, ratio in rows]
    lines.append(f"\nOverhead of the library path over the raw forward: **{100 * r['overhead']:.1f}%** (target: under 10%).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from .common import machine

    ap = argparse.ArgumentParser(prog="python -m benchmarks.extraction", description="the extraction stage alone")
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    info = machine()
    print(f"{info['cpu_model']}, {info['cores']} cores, torch {info['torch']}, {info['date']}\n")
    print(markdown(run(args.images, args.repeats)))


if __name__ == "__main__":
    main()
