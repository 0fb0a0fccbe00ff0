"""Reading items from the command line: captions files, folders and lists of media paths."""
from __future__ import annotations

from pathlib import Path

from ..errors import DataError

MAX_LINE = 100_000  # characters; a longer "caption" is almost surely a wrong file
# files a folder of these modalities contributes; folders of other modalities give every file
MEDIA_EXTS = {
    "image": {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"},
    "audio": {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"},
    "3d": {".npy", ".ply", ".obj"},
}


def read_items(path: str | Path, modality: str) -> list[str]:
    """Text: one caption per line. Other modalities: a folder (its files, sorted, hidden ones
    skipped; for image, audio and 3d only files with their extensions, ``MEDIA_EXTS``) or a
    file with one path per line (relative to the file's folder)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"items file {str(path)!r} does not exist; check the path")
    if p.is_dir():
        if modality == "text":
            raise DataError(f"{path} is a folder; for text, give a file with one caption per line")
        files = sorted(f for f in p.rglob("*") if f.is_file() and not any(x.startswith(".") for x in f.relative_to(p).parts))
        if not files:
            raise DataError(f"folder {path} holds no files")
        exts = MEDIA_EXTS.get(modality)
        if exts:
            media = [f for f in files if f.suffix.lower() in exts]
            if not media:
                raise DataError(f"folder {path} holds no {modality} files ({', '.join(sorted(exts))})")
            files = media
        return [str(f) for f in files]
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise DataError(f"{path}: line {n} has {len(line):,} characters (limit {MAX_LINE:,}); is this an items file?")
        line = line.strip()
        if not line:
            continue
        if modality != "text":
            candidate = p.parent / line
            if not Path(line).is_absolute() and candidate.exists():
                line = str(candidate)
        items.append(line)
    if not items:
        raise DataError(f"{path} has no items (it is empty or blank)")
    return items


def parse_assignment(text: str, what: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``(KEY, VALUE)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise DataError(f"{what} takes KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()
