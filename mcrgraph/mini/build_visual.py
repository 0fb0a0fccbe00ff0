"""Pictures and point clouds for the mini world: DejaVu-rendered digits, letters and numbers,
scikit-learn's handwritten digits, Noto emoji, and extruded glyphs. Every stored image is a
PIL image that goes through ``features.image_input``; every cloud goes through ``points_input``."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .features import image_input, points_input

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
# DejaVu faces by split: held-out and memory faces are never used for training
FONTS = {
    "train": ["DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique", "DejaVuSans-ExtraLight",
              "DejaVuSansCondensed", "DejaVuSansCondensed-Bold", "DejaVuSansMono", "DejaVuSansMono-Bold",
              "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
              "DejaVuSerifCondensed", "DejaVuSerifCondensed-BoldItalic"],
    "memory": ["DejaVuSansCondensed-BoldOblique", "DejaVuSerifCondensed-Bold", "DejaVuSansMono-Oblique"],
    "heldout": ["DejaVuSansCondensed-Oblique", "DejaVuSerifCondensed-Italic", "DejaVuSansMono-BoldOblique"],
}
CANVAS = 64  # drawn at twice the stored size, then image_input scales to 32


def font_path(name: str) -> str:
    return str(DEJAVU / f"{name}.ttf")


def missing_files() -> list[str]:
    need = [font_path(f) for fs in FONTS.values() for f in fs] + [str(EMOJI_FONT)]
    return [p for p in need if not Path(p).exists()]


@functools.lru_cache(maxsize=256)
def _font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


def _colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(ink, paper) with enough contrast."""
    while True:
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        la, lb = (a @ [0.299, 0.587, 0.114]) / 255, (b @ [0.299, 0.587, 0.114]) / 255
        if abs(la - lb) > 0.4:
            return tuple(int(v) for v in a), tuple(int(v) for v in b)


def _paper(rng: np.random.Generator, colour: tuple[int, ...] | None = None):
    """A background: plain (given or white or random) or a two-colour gradient."""
    from PIL import Image

    if colour is not None and rng.random() < 0.75:
        return Image.new("RGB", (CANVAS, CANVAS), colour)
    r = rng.random()
    if r < 0.3:
        return Image.new("RGB", (CANVAS, CANVAS), (255, 255, 255))
    c0 = rng.integers(0, 256, 3) if colour is None else np.asarray(colour)
    if r < 0.75:
        return Image.new("RGB", (CANVAS, CANVAS), tuple(int(v) for v in c0))
    c1 = np.clip(c0 + rng.integers(-80, 81, 3), 0, 255)
    t = np.linspace(0, 1, CANVAS)[:, None, None]
    grad = (1 - t) * c0 + t * c1
    grad = np.broadcast_to(grad, (CANVAS, CANVAS, 3))
    if rng.random() < 0.5:
        grad = grad.transpose(1, 0, 2)
    return Image.fromarray(np.ascontiguousarray(grad).astype(np.uint8), "RGB")


def _place(sprite, paper, rng: np.random.Generator, fill: tuple[float, float], angle: float):
    """Rotate an RGBA sprite, scale its larger side to ``fill`` of the canvas, paste at a random spot."""
    from PIL import Image

    sprite = sprite.rotate(angle, resample=Image.BICUBIC, expand=True)
    box = sprite.getbbox()
    if box:
        sprite = sprite.crop(box)
    side = rng.uniform(*fill) * CANVAS
    s = side / max(sprite.size)
    w, h = max(1, int(round(sprite.width * s * rng.uniform(0.9, 1.1)))), max(1, int(round(sprite.height * s)))
    sprite = sprite.resize((w, h), Image.LANCZOS)
    x = int(rng.integers(min(0, CANVAS - w), max(0, CANVAS - w) + 1))
    y = int(rng.integers(min(0, CANVAS - h), max(0, CANVAS - h) + 1))
    paper.paste(sprite, (x, y), sprite)
    return paper


def _finish(img, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageFilter

    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.5)))
    if rng.random() < 0.3:
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(3, 18), (CANVAS, CANVAS, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return image_input(img)


# -- jobs -----------------------------------------------------------------------------------

def job_text_image(texts: list[str], font: str, seed: int) -> np.ndarray:
    """Printed text (a digit, a letter in a random case, a number) in one DejaVu face."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    text = texts[int(rng.integers(len(texts)))]
    f = _font(font_path(font), 96)
    ink, paper = _colours(rng)
    l, t, r, b = f.getbbox(text)
    sprite = Image.new("RGBA", (r - l + 8, b - t + 8), (0, 0, 0, 0))
    ImageDraw.Draw(sprite).text((4 - l, 4 - t), text, font=f, fill=ink + (255,))
    fill = (0.45, 0.9) if len(text) == 1 else (0.6, 0.98)
    img = _place(sprite, _paper(rng, paper), rng, fill, rng.uniform(-20, 20))
    return _finish(img, rng)


def job_handwritten(pixels: np.ndarray, seed: int) -> np.ndarray:
    """One of scikit-learn's 8x8 handwritten digits (ink 0..16), coloured, rotated, placed."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ink, paper = _colours(rng)
    mask = Image.fromarray((np.asarray(pixels, dtype=np.float64) / 16 * 255).astype(np.uint8), "L").resize((40, 40), Image.BILINEAR)
    sprite = Image.new("RGBA", mask.size, ink + (255,))
    sprite.putalpha(mask)
    img = _place(sprite, _paper(rng, paper), rng, (0.6, 0.95), rng.uniform(-12, 12))
    return _finish(img, rng)


@functools.lru_cache(maxsize=512)
def _emoji(ch: str):
    from PIL import Image, ImageDraw

    f = _font(str(EMOJI_FONT), 109)  # the only size the bitmap font has
    im = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((10, 10), ch, font=f, embedded_color=True)
    box = im.getbbox()
    if box is None:
        raise RuntimeError(f"the emoji font has no picture for {ch!r}")
    return im.crop(box)


def job_emoji(ch: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = _place(_emoji(ch).copy(), _paper(rng), rng, (0.5, 0.98), rng.uniform(-15, 15))
    return _finish(img, rng)


# -- 3d: extruded glyphs -----------------------------------------------------------------------

@functools.lru_cache(maxsize=512)
def _mask(text: str, font: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    f = _font(font_path(font), 80)
    l, t, r, b = f.getbbox(text)
    im = Image.new("L", (r - l + 4, b - t + 4), 0)
    ImageDraw.Draw(im).text((2 - l, 2 - t), text, font=f, fill=255)
    return np.asarray(im) > 127


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """Turn about the vertical axis up to 60 degrees, tilt up to 30, roll up to 20 (a glyph seen
    from the front half, never upside down, so 6 and 9 stay apart)."""
    yaw, pitch, roll = np.radians([rng.uniform(-60, 60), rng.uniform(-30, 30), rng.uniform(-20, 20)])
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def extruded_points(mask: np.ndarray, rng: np.random.Generator, n: int = 1024) -> np.ndarray:
    """Points on the surface of a glyph mask extruded to a random depth: front and back faces
    and side walls, in proportion to their areas."""
    from scipy.ndimage import binary_erosion

    h = mask.shape[0]
    depth = rng.uniform(0.15, 0.4) * h
    inside = np.argwhere(mask)
    wall = np.argwhere(mask & ~binary_erosion(mask))
    a_face, a_wall = 2 * len(inside), len(wall) * depth
    n_face = int(round(n * a_face / (a_face + a_wall)))
    f = inside[rng.integers(len(inside), size=n_face)] + rng.random((n_face, 2))
    fz = np.where(rng.random(n_face) < 0.5, -depth / 2, depth / 2)
    w = wall[rng.integers(len(wall), size=n - n_face)] + rng.random((n - n_face, 2))
    wz = rng.uniform(-depth / 2, depth / 2, n - n_face)
    rows = np.concatenate([f, w])
    xyz = np.stack([rows[:, 1], -rows[:, 0], np.concatenate([fz, wz])], axis=1) / h
    return xyz


def job_points(texts: list[str], font: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    text = texts[int(rng.integers(len(texts)))]
    xyz = extruded_points(_mask(text, font), rng)
    xyz = xyz - xyz.mean(axis=0)
    xyz = xyz @ _rotation(rng).T + rng.normal(0, 0.004, xyz.shape)
    return points_input(xyz, seed=seed % (2 ** 32)).astype(np.float16)
