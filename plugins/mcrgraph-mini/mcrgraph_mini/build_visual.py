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


# -- geometric solids -------------------------------------------------------------------------

def _shade(colour: tuple[int, ...], f: float) -> tuple[int, ...]:
    return tuple(int(max(0, min(255, c * f))) for c in colour) + (255,)


def _shape_sprite(name: str, colour: tuple[int, ...], rng: np.random.Generator):
    """A shaded drawing of a solid on a transparent RGBA canvas."""
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    c, q = CANVAS, CANVAS / 8
    if name == "sphere":
        for k in range(12):  # light from the upper left
            r = (c / 2 - q) * (1 - k / 12)
            off = k * q / 8
            d.ellipse([c / 2 - r - off, c / 2 - r - off, c / 2 + r - off, c / 2 + r - off], fill=_shade(colour, 0.6 + 0.05 * k))
    elif name == "cube":
        top = [(c / 2, q), (c - q, 2.2 * q), (c / 2, 3.4 * q), (q, 2.2 * q)]
        d.polygon(top, fill=_shade(colour, 1.25))
        d.polygon([(q, 2.2 * q), (c / 2, 3.4 * q), (c / 2, c - q), (q, c - 2.2 * q)], fill=_shade(colour, 0.9))
        d.polygon([(c / 2, 3.4 * q), (c - q, 2.2 * q), (c - q, c - 2.2 * q), (c / 2, c - q)], fill=_shade(colour, 0.6))
    elif name == "cylinder":
        d.rectangle([1.5 * q, 2 * q, c - 1.5 * q, c - 2 * q], fill=_shade(colour, 0.85))
        d.ellipse([1.5 * q, c - 3 * q, c - 1.5 * q, c - q], fill=_shade(colour, 0.85))
        d.ellipse([1.5 * q, q, c - 1.5 * q, 3 * q], fill=_shade(colour, 1.25))
    elif name == "cone":
        box = [1.2 * q, c - 2.6 * q, c - 1.2 * q, c - q]  # a round base, its front half showing
        d.polygon([(c / 2, q), (1.2 * q, c - 1.8 * q), (c / 2, c - 1.8 * q)], fill=_shade(colour, 1.1))
        d.polygon([(c / 2, q), (c / 2, c - 1.8 * q), (c - 1.2 * q, c - 1.8 * q)], fill=_shade(colour, 0.75))
        d.pieslice(box, 0, 90, fill=_shade(colour, 0.75))
        d.pieslice(box, 90, 180, fill=_shade(colour, 1.1))
    elif name == "pyramid":
        d.polygon([(c / 2, q), (q, c - 2 * q), (c * 0.55, c - q)], fill=_shade(colour, 1.15))
        d.polygon([(c / 2, q), (c * 0.55, c - q), (c - q, c - 2.3 * q)], fill=_shade(colour, 0.7))
    elif name == "torus":
        d.ellipse([q, 2 * q, c - q, c - 2 * q], fill=_shade(colour, 0.9))
        d.ellipse([q, 1.7 * q, c - q, c - 2.4 * q], outline=_shade(colour, 1.2), width=int(q))
        d.ellipse([3 * q, 3.4 * q, c - 3 * q, c - 3.4 * q], fill=(0, 0, 0, 0))
    else:
        raise ValueError(f"unknown shape {name!r}")
    return im


def job_shape_image(name: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ink, paper = _colours(rng)
    img = _place(_shape_sprite(name, ink, rng), _paper(rng, paper), rng, (0.55, 0.9), rng.uniform(-20, 20))
    return _finish(img, rng)


def solid_points(name: str, rng: np.random.Generator, n: int = 1024) -> np.ndarray:
    """Points on the surface of a unit-sized solid, in proportion to area."""
    u = rng.random((4 * n, 2))
    if name == "sphere":
        p = rng.normal(size=(n, 3))
        return p / np.linalg.norm(p, axis=1, keepdims=True)
    if name == "cube":
        face, st = rng.integers(6, size=n), rng.uniform(-1, 1, (n, 2))
        p = np.insert(st, 0, np.where(face % 2, 1.0, -1.0), axis=1)  # x = +-1, then roll the axes
        return np.stack([np.roll(row, int(f // 2)) for row, f in zip(p, face)])
    if name == "cylinder":  # radius 1, height 2: side 4 pi, caps 2 pi
        side = rng.random(n) < 4 / 6
        t = 2 * np.pi * u[:n, 0]
        r = np.where(side, 1.0, np.sqrt(u[:n, 1]))
        z = np.where(side, 2 * u[:n, 1] - 1, np.where(rng.random(n) < 0.5, -1.0, 1.0))
        return np.stack([r * np.cos(t), r * np.sin(t), z], axis=1)
    if name == "cone":  # apex at z=1, base radius 1 at z=-1
        side = rng.random(n) < np.sqrt(5) / (np.sqrt(5) + 1)
        t = 2 * np.pi * u[:n, 0]
        h = np.sqrt(u[:n, 1])  # more points where the circle is wider
        r = np.where(side, h, np.sqrt(u[:n, 1]))
        z = np.where(side, 1 - 2 * h, -1.0)
        return np.stack([r * np.cos(t), r * np.sin(t), z], axis=1)
    if name == "pyramid":  # square base at z=-1, apex at z=1
        base = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1]], float)
        apex = np.array([0, 0, 1.0])
        tris = [(base[i], base[(i + 1) % 4], apex) for i in range(4)] + [(base[0], base[1], base[2]), (base[0], base[2], base[3])]
        areas = np.array([np.linalg.norm(np.cross(b - a, c - a)) / 2 for a, b, c in tris])
        which = rng.choice(len(tris), size=n, p=areas / areas.sum())
        a, b = np.sqrt(u[:n, 0]), u[:n, 1]
        out = np.empty((n, 3))
        for i, (p0, p1, p2) in enumerate(tris):
            m = which == i
            out[m] = (1 - a[m, None]) * p0 + (a[m] * (1 - b[m]))[:, None] * p1 + (a[m] * b[m])[:, None] * p2
        return out
    if name == "torus":  # R = 1, r = 0.35; keep angle pairs in proportion to the area they cover
        tu, tv = 2 * np.pi * u[:, 0], 2 * np.pi * u[:, 1]
        keep = rng.random(len(tu)) < (1 + 0.35 * np.cos(tv)) / 1.35
        tu, tv = tu[keep][:n], tv[keep][:n]
        rr = 1 + 0.35 * np.cos(tv)
        return np.stack([rr * np.cos(tu), rr * np.sin(tu), 0.35 * np.sin(tv)], axis=1)
    raise ValueError(f"unknown shape {name!r}")


def job_shape_points(name: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xyz = solid_points(name, rng) * rng.uniform(0.7, 1.3, 3)  # a little stretched per axis
    xyz = xyz @ _rotation(rng).T + rng.normal(0, 0.004, xyz.shape)
    return points_input(xyz, seed=seed % (2 ** 32)).astype(np.float16)
