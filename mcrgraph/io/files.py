"""Checks every file reader makes first, so a missing file reads as missing, not as a decoder's
"System error" (soundfile) or a bare errno."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError


def readable_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path when it is a readable file; DataError saying which of missing, a
    folder or unreadable it is otherwise. ``what`` names the file: "sound file", "image file"."""
    p = Path(path).expanduser()
    if not p.exists():
        hint = " (a broken link)" if p.is_symlink() else ""
        raise DataError(f"{what} {str(path)!r} does not exist{hint}; check the path")
    if p.is_dir():
        raise DataError(f"{what} {str(path)!r} is a folder; give a file (for many files, use --items/--images with the folder)")
    if not os.access(p, os.R_OK):
        raise DataError(f"{what} {str(path)!r} cannot be read: permission denied")
    return p
