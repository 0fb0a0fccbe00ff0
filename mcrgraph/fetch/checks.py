"""What both download paths share (download.py by hand, hub.py through huggingface_hub): a
file's digests and the one-line reason of a failure."""
from __future__ import annotations

import hashlib
from pathlib import Path


def git_blob_id(path: str | Path) -> str:
    """The id git (and GitHub) gives a file's bytes: sha1 of ``blob <size>\\0`` + bytes."""
    p = Path(path)
    return _digest_into(hashlib.sha1(f"blob {p.stat().st_size}\0".encode()), p)


def sha256_of(path: str | Path) -> str:
    return _digest_into(hashlib.sha256(), Path(path))


def _digest_into(h, path: Path) -> str:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def why(e: BaseException | None) -> str:
    """'Type: first line' of an error, or of the error a URLError wraps."""
    if e is None:
        return "no reason given"
    inner = getattr(e, "reason", None)
    e = inner if isinstance(inner, BaseException) else e
    text = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
