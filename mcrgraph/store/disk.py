"""Where mcrgraph keeps its files, and how it writes them so a crash never leaves half a file."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import StoreError


def home() -> Path:
    """The store root: ``$MCRGRAPH_HOME``, else the user's cache dir."""
    env = os.environ.get("MCRGRAPH_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mcrgraph"))


def connectors_dir() -> Path:
    return home() / "connectors"


def cache_dir() -> Path:
    return home() / "cache"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _make_dirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create {path}: {e.strerror}; set MCRGRAPH_HOME to a writable folder") from e


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    _make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise StoreError(f"cannot write in {path.parent}: {e.strerror}") from e
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; files here are ordinary user files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StoreError(f"cannot write {path}: {e.strerror}") from e


def set_aside(final: Path) -> Path | None:
    """The newest copy of ``final`` that ``atomic_dir`` moved aside and a crash left behind (killed
    between moving the old version aside and renaming the new one in); None when there is none."""
    final = Path(final)
    found = [p for p in final.parent.glob(f".{final.name}.*.old/x") if p.is_dir()]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


@contextlib.contextmanager
def atomic_dir(final: Path, overwrite: bool = False):
    """Yield a temp folder beside ``final``; on success it is renamed into place in one step.

    On any exception the temp folder is removed and ``final`` is untouched."""
    final = Path(final)
    _make_dirs(final.parent)
    if final.exists() and not overwrite:
        raise StoreError(f"{final} already exists; choose another --name or pass --overwrite")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    except OSError as e:
        raise StoreError(f"cannot write in {final.parent}: {e.strerror}") from e
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        old = None
        if final.exists():
            if not overwrite:
                raise StoreError(f"{final} was created by another process meanwhile; choose another --name or pass --overwrite")
            # move the old one aside first, so that a crash keeps one of the two
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            with contextlib.suppress(FileNotFoundError):  # another writer moved it already
                os.replace(final, old / "x")
        try:
            os.replace(tmp, final)
        except OSError as e:
            raise StoreError(f"{final} was written by another process at the same time; nothing of this run was stored ({e.strerror})") from None
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(final.parent)
    except OSError as e:  # full disk, read-only folder, ...: say so; the old version is intact
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot write {final}: {e.strerror or e}; nothing was stored") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
