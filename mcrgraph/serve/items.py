"""What a gallery item shows a person, as bytes with a media type: images as they are (a
folder's file, when its content is an image) or as PNG (a plugin's arrays), sounds as the file
or as WAV, point clouds as a rendered view (PNG). Made media are kept in the gallery's media
folder. Files are only ever read through ``galleries_store.item_file``, which stays inside the
gallery's folder."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from ..store import galleries as store
from ..errors import DataError
from ..store.galleries import GalleryCard
from ..spaces.mcr import split_pin
from ..store.disk import atomic_write_bytes
from .uploads import sniff

VIEW_SIZE = 192  # pixels of a rendered point cloud and of image thumbnails


def modality_of(card: GalleryCard) -> str:
    return split_pin(card.modality)[0]


def _png(arr: np.ndarray, size: int | None = None) -> bytes:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(arr.astype(np.uint8)), "RGB")
    if size and max(im.size) < size:  # tiny pictures (the mini world's 32x32) grow with hard edges
        scale = max(1, size // max(im.size))
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    elif size:
        im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _wav(wave: np.ndarray, sr: int) -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, np.asarray(wave, dtype=np.float32), int(sr), format="WAV", subtype="PCM_16")
    return buf.getvalue()


def render_points(points: np.ndarray, size: int = VIEW_SIZE) -> bytes:
    """A point cloud seen from above and to the side: orthographic, far points first, coloured
    by height (blue low, orange high), on white."""
    from PIL import Image, ImageDraw

    from ..io.pointcloud import load_point_cloud

    pts = load_point_cloud(points, min(4096, max(len(points), 1)), seed=0).astype(np.float64)
    az, el = np.radians(35.0), np.radians(20.0)
    rot_y = np.array([[np.cos(az), 0, np.sin(az)], [0, 1, 0], [-np.sin(az), 0, np.cos(az)]])
    rot_x = np.array([[1, 0, 0], [0, np.cos(el), -np.sin(el)], [0, np.sin(el), np.cos(el)]])
    view = pts @ rot_y.T @ rot_x.T
    height = (pts[:, 1] - pts[:, 1].min()) / max(np.ptp(pts[:, 1]), 1e-9)
    low, high = np.array([33, 158, 188]), np.array([251, 133, 0])
    colours = (low[None] * (1 - height[:, None]) + high[None] * height[:, None]).astype(int)
    im = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(im)
    half, r = size / 2, max(1.5, size / 110)
    for i in np.argsort(view[:, 2]):  # far first
        x, y = half + view[i, 0] * half * 0.9, half - view[i, 1] * half * 0.9
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(colours[i]))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _plugin_media(card: GalleryCard, index: int):
    from ..spaces.plugins import hook

    got = hook().item_media(modality=modality_of(card), item=card.items[index])
    if got is None:
        raise DataError(f"no plugin shows item {card.items[index]!r} of gallery {card.name!r}")
    return got


def _kept(card: GalleryCard, key: str, make) -> bytes:
    """Media made once per item and kept in the gallery's media folder."""
    path = store.media_dir(card) / key
    try:
        return path.read_bytes()
    except OSError:
        data = make()
        atomic_write_bytes(path, data)
        return data


def _file_key(path: Path, index: int, what: str) -> str:
    st = path.stat()
    return hashlib.sha256(f"{index}|{path}|{st.st_size}|{st.st_mtime_ns}|{what}".encode()).hexdigest()[:24] + ".png"


def item_media(card: GalleryCard, index: int, view: bool = False) -> tuple[bytes, str]:
    """(bytes, media type) of item ``index``: the item itself, or with ``view`` a PNG picture
    of it (images as thumbnails, point clouds rendered)."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(card.items):
        raise DataError(f"gallery {card.name!r} has items 0 to {len(card.items) - 1}, not {index!r}")
    modality = modality_of(card)
    if card.root is None and card.plugin is None:  # captions
        if view:
            raise DataError(f"gallery {card.name!r} holds texts; they have no picture")
        return card.items[index].encode(), "text/plain; charset=utf-8"
    if card.root is None:
        if modality == "image":
            return _png(np.asarray(_plugin_media(card, index)), VIEW_SIZE if view else None), "image/png"
        if modality == "audio" and not view:
            return _kept(card, f"audio-{index}.wav", lambda: _wav(*_plugin_media(card, index))), "audio/wav"
        if modality == "3d":
            return _kept(card, f"3d-{index}.png", lambda: render_points(np.asarray(_plugin_media(card, index)))), "image/png"
        raise DataError(f"items of gallery {card.name!r} ({modality}) have no picture")
    path = store.item_file(card, index)
    if modality == "3d":
        from ..io.pointcloud import read_points

        return _kept(card, _file_key(path, index, "3d"), lambda: render_points(read_points(path))), "image/png"
    with open(path, "rb") as f:
        head = f.read(64)
    kind = sniff(head)
    if kind is None or kind.modality != modality:
        raise DataError(f"item {index} of gallery {card.name!r} is not a {modality} file by its content; it is not served")
    if modality == "image" and view:
        from ..io.media import pil_image

        return _kept(card, _file_key(path, index, "view"), lambda: _png(np.asarray(pil_image(path)), VIEW_SIZE)), "image/png"
    if view:
        raise DataError(f"items of gallery {card.name!r} ({modality}) have no picture")
    return path.read_bytes(), kind.media_type
