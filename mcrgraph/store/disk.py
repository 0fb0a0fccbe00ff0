"""Where mcrgraph keeps its files, and how it writes them so a crash never leaves half a file."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

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


def _swap_lock(final: Path, timeout: float = -1):
    """Held while a folder is replaced or put back, so a reader never puts back a copy a live
    writer has just set aside (it would make that writer fail)."""
    return FileLock(final.parent / f".{final.name}.swap", timeout=timeout)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux renameat2 RENAME_EXCHANGE), so no instant has neither;
    False where the OS or the file system cannot (then atomic_dir sets the old one aside)."""
    import ctypes
    import errno

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):  # no renameat2 in this C library (macOS, Windows, old ones)
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def recover(final: Path, timeout: float = 10) -> bool:
    """Put back the copy of ``final`` a crash left set aside (see ``set_aside``); True if it did.
    Nothing happens when ``final`` exists or another process holds the swap lock."""
    final = Path(final)
    if final.exists() or set_aside(final) is None:
        return False
    try:
        with _swap_lock(final, timeout=timeout):
            aside = set_aside(final)
            if final.exists() or aside is None:
                return False
            os.replace(aside, final)
            shutil.rmtree(aside.parent, ignore_errors=True)
            _fsync_dir(final.parent)
            return True
    except (OSError, TimeoutError):  # a read-only store or a live writer: read the set-aside copy where it is
        return False


@contextlib.contextmanager
def atomic_dir(final: Path, overwrite: bool = False):
    """Yield a temp folder beside ``final``; on success it takes ``final``'s place in one step.

    On any exception the temp folder is removed and ``final`` is untouched."""
    final = Path(final)
    _make_dirs(final.parent)
    recover(final)
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
        _replace(tmp, final, overwrite)
        _fsync_dir(final.parent)
    except OSError as e:  # full disk, read-only folder, ...: say so; the old version is intact
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"cannot write {final}: {e.strerror or e}; nothing was stored") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace(tmp: Path, final: Path, overwrite: bool) -> None:
    if not final.exists():
        try:
            os.replace(tmp, final)
        except OSError as e:
            raise StoreError(f"{final} was written by another process at the same time; nothing of this run was stored ({e.strerror})") from None
        return
    if not overwrite:
        raise StoreError(f"{final} was created by another process meanwhile; choose another --name or pass --overwrite")
    if _exchange(tmp, final):
        shutil.rmtree(tmp, ignore_errors=True)  # now the old version
        return
    # no one-step swap here: move the old one aside first, so that a crash keeps one of the two
    # (``recover`` puts it back)
    with _swap_lock(final):
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        try:
            os.replace(final, old / "x")
            os.replace(tmp, final)
        except OSError as e:
            if not final.exists() and (old / "x").exists():
                os.replace(old / "x", final)
            raise StoreError(f"cannot replace {final}: {e.strerror}; the old version is kept") from None
        finally:
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
