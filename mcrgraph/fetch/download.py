"""Downloading one file over HTTP(S), safely: the bytes go to ``<dest>.part`` in the same folder
and only a complete, verified file is renamed onto ``dest`` (a crash or a cut connection never
leaves a half-written file there); a ``.part`` left by a cut is resumed with an HTTP Range request
when the server honours it, else the download restarts from zero. A ``dest`` that already holds
the expected bytes is used as it is, with no transfer.

Checks: a git blob id (what GitHub shows for a file in a repository: sha1 of ``b"blob <size>\\0"``
followed by the bytes) or a sha256. Standard library only (urllib), so it works wherever Python
does; files on the Hugging Face hub go through ``huggingface_hub`` (``hub_download``)."""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChecksumError, DownloadError
from ..io.progress import progress_bar
from ..version import __version__

CHUNK = 1 << 16
TIMEOUT = 60.0  # seconds without a byte before giving up on a connection
ATTEMPTS = 3  # tries per fetch; each one resumes (or restarts) the .part
USER_AGENT = f"mcrgraph/{__version__} (+urllib)"


def git_blob_id(path: str | Path) -> str:
    """The id git (and GitHub) gives a file's bytes: sha1 of ``blob <size>\\0`` + bytes."""
    p = Path(path)
    h = hashlib.sha1(f"blob {p.stat().st_size}\0".encode())
    return _digest_into(h, p)


def sha256_of(path: str | Path) -> str:
    return _digest_into(hashlib.sha256(), Path(path))


def _digest_into(h, path: Path) -> str:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Expect:
    """What a downloaded file must hash to: a git blob id and/or a sha256 (lower-case hex)."""

    blob_id: str | None = None
    sha256: str | None = None

    def __bool__(self) -> bool:
        return bool(self.blob_id or self.sha256)

    def mismatch(self, path: Path) -> str | None:
        """None when ``path`` holds the expected bytes; else 'expected X, found Y'."""
        if self.blob_id and (found := git_blob_id(path)) != self.blob_id.lower():
            return f"git blob id expected {self.blob_id.lower()}, found {found}"
        if self.sha256 and (found := sha256_of(path)) != self.sha256.lower():
            return f"sha256 expected {self.sha256.lower()}, found {found}"
        return None


def fetch(url: str, dest: str | Path, *, blob_id: str | None = None, sha256: str | None = None,
          progress: bool = True, timeout: float = TIMEOUT, attempts: int = ATTEMPTS) -> Path:
    """``url`` saved at ``dest`` (a file path; its folder is created), checked against
    ``blob_id`` and/or ``sha256`` when given; returns ``dest``.

    A ``dest`` that already matches (or exists, when no digest is given) is returned with no
    transfer. Otherwise the bytes stream into ``dest.part``; a cut connection is resumed from
    where it stopped (HTTP Range) or restarted when the server ignores ranges, up to
    ``attempts`` times. A file whose digest differs is deleted and refused (ChecksumError);
    nothing is ever written at ``dest`` but a complete, verified file."""
    dest = Path(dest).expanduser()
    expect = Expect(blob_id, sha256)
    if _usable(dest, expect):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {dest.parent} for {dest.name}: {e.strerror}; choose a writable place") from None
    if not os.access(dest.parent, os.W_OK):
        raise DownloadError(f"cannot write in {dest.parent} (permission denied) to save {dest.name}; choose a writable place")
    part = dest.with_name(dest.name + ".part")
    with _locked(dest):
        if _usable(dest, expect):  # another process finished it while we waited
            return dest
        last: Exception | None = None
        for attempt in range(max(1, attempts)):
            try:
                _transfer(url, part, dest, progress, timeout)
                break
            except _Retry as e:
                last = e.cause
                if attempt + 1 < attempts:
                    time.sleep(min(0.2 * 2 ** attempt, 2.0))
        else:
            kept = f"; the {part.stat().st_size:,} bytes received are kept in {part} and the next try resumes there" \
                if part.is_file() and part.stat().st_size else ""
            raise DownloadError(f"downloading {url} failed {attempts} times ({_why(last)}){kept}. "
                                f"{_by_hand(url, dest)}") from None
        bad = expect.mismatch(part)
        if bad:
            part.unlink(missing_ok=True)  # a wrong file is not worth resuming
            _validator_file(part).unlink(missing_ok=True)
            raise ChecksumError(f"refused {url}: {bad} (for {dest}); the download was deleted and nothing was written at "
                                f"{dest}. The file on the server is not the one mcrgraph expects: it may have been "
                                f"replaced upstream, or a proxy altered it")
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(part, dest)
        _validator_file(part).unlink(missing_ok=True)
    return dest


def _usable(dest: Path, expect: Expect) -> bool:
    if not dest.is_file():
        return False
    return not expect or expect.mismatch(dest) is None


class _Retry(Exception):
    """A transfer that stopped in a way another attempt may get past (a cut, a timeout)."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _transfer(url: str, part: Path, dest: Path, progress: bool, timeout: float) -> None:
    """One attempt: append to ``part`` from its current size when the server honours Range,
    else write it from zero. Raises _Retry for errors worth another attempt."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    validator = _validator_file(part)
    if have:
        headers["Range"] = f"bytes={have}-"
        if validator.is_file():  # the rest of *that* version, else the server sends the whole new one
            headers["If-Range"] = validator.read_text().strip()
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the .part is not a prefix the server knows: start over
            part.unlink(missing_ok=True)
            raise _Retry(e) from None
        if e.code >= 500 or e.code == 429:
            raise _Retry(e) from None
        raise DownloadError(f"{url} answered HTTP {e.code} {e.reason}; check the address (or the mirror set for it)") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, (socket.timeout, TimeoutError, ConnectionResetError)):
            raise _Retry(e) from None
        raise DownloadError(f"cannot reach {url} ({_why(e)}): is this machine offline? {_by_hand(url, dest)}") from None
    with response:
        start, total = _range_of(response, have)
        mode = "ab" if start else "wb"  # 200 to a Range request: the server sends it all again
        if not start:  # remember which version of the file the .part holds (ETag, else Last-Modified)
            tag = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if tag:
                validator.write_text(tag)
            else:
                validator.unlink(missing_ok=True)
        received = 0
        try:
            with open(part, mode) as f, progress_bar(total, dest.name, unit="B", enabled=progress,
                                                     unit_scale=True, initial=start) as bar:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    received += len(block)
                    bar.update(len(block))
        except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as e:
            raise _Retry(e) from None
        if total is not None and start + received < total:  # closed early without an error
            raise _Retry(ConnectionError(f"connection closed after {start + received:,} of {total:,} bytes"))


def _validator_file(part: Path) -> Path:
    return part.with_name(part.name + ".version")


def _range_of(response, have: int) -> tuple[int, int | None]:
    """(where the body starts in the file, the file's full size or None) from the response."""
    length = response.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if response.status == 206:
        spec = response.headers.get("Content-Range", "")  # bytes START-END/TOTAL
        try:
            first, full = spec.split(" ", 1)[1].split("-", 1)[0], spec.rsplit("/", 1)[1]
            if int(first) == have:
                return have, int(full) if full.isdigit() else None
        except (IndexError, ValueError):
            pass
        raise _Retry(ConnectionError(f"the server answered a range other than the one asked ({spec!r})"))
    return 0, length


def remote_size(url: str, timeout: float = 15.0) -> int | None:
    """The size the server reports for ``url`` (a HEAD request), or None when it does not say
    or cannot be reached."""
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            n = r.headers.get("Content-Length")
            return int(n) if n and n.isdigit() else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(dest: Path):
    """One writer per folder across processes (two `mcrgraph download` at once would otherwise
    append to the same .part). The folder itself is locked, so no lock file is left behind;
    a no-op where fcntl is missing."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _why(e: BaseException | None) -> str:
    """'Type: first line' of an error, or of the error a URLError wraps."""
    if e is None:
        return "no reason given"
    inner = getattr(e, "reason", None)
    e = inner if isinstance(inner, BaseException) else e
    text = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _by_hand(url: str, dest: Path) -> str:
    return f"To do it by hand: download {url} where you are online and put the file at {dest}"


def human_size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{n} B"


# -- what a space needs: files a plugin declares (hook ``weights_downloads``) -----------------
@dataclass(frozen=True)
class Download:
    """One file a space reads its weights (or tokenizer) from, as its plugin declares it for
    ``mcrgraph download``. Either a plain address (``url``, saved at ``dest``) or a file of a
    Hugging Face hub repository (``repo_id`` + ``filename``, saved in the hub cache, or
    ``cache_dir``, where the plugin looks it up). ``size`` (bytes) is what the plugin knows
    without asking a server; ``hint`` says how to supply the file by hand."""

    what: str
    url: str = ""
    dest: Path | None = None
    repo_id: str = ""
    filename: str = ""
    revision: str | None = None
    repo_type: str | None = None  # None: a model repository; "dataset" for dataset repositories
    cache_dir: str | None = None
    blob_id: str | None = None
    sha256: str | None = None
    size: int | None = None
    licence: str = ""
    hint: str = ""

    def __post_init__(self):
        if bool(self.url) == bool(self.repo_id and self.filename) or (self.url and self.dest is None):
            raise ValueError(f"{self.what}: a Download is either url + dest or repo_id + filename")

    @property
    def on_hub(self) -> bool:
        return not self.url

    def address(self) -> str:
        """Where the file comes from, as a URL a browser can open."""
        if self.url:
            return self.url
        try:  # the hub client's own address for it (HF_ENDPOINT moves it to a mirror)
            from huggingface_hub import hf_hub_url

            return hf_hub_url(self.repo_id, self.filename, revision=self.revision, repo_type=self.repo_type)
        except ImportError:
            kind = "datasets/" if self.repo_type == "dataset" else "spaces/" if self.repo_type == "space" else ""
            return f"https://huggingface.co/{kind}{self.repo_id}/resolve/{self.revision or 'main'}/{self.filename}"

    def local(self) -> Path | None:
        """The file on this machine when it is there (never downloads, never hashes)."""
        if not self.on_hub:
            return self.dest if self.dest is not None and Path(self.dest).expanduser().is_file() else None
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        found = try_to_load_from_cache(self.repo_id, self.filename, cache_dir=self.cache_dir, revision=self.revision,
                                       repo_type=self.repo_type)
        return Path(found) if isinstance(found, str) and os.path.isfile(found) else None

    def remote_size(self, timeout: float = 15.0) -> int | None:
        """The size the host reports, or None (offline, or it does not say)."""
        if not self.on_hub:
            return remote_size(self.url, timeout)
        try:
            from huggingface_hub import get_hf_file_metadata, hf_hub_url

            meta = get_hf_file_metadata(hf_hub_url(self.repo_id, self.filename, revision=self.revision, repo_type=self.repo_type),
                                        timeout=timeout)
            return meta.size
        except Exception:  # offline, hub errors: the size is simply unknown
            return None

    def fetch(self, progress: bool = True) -> Path:
        """The file, downloaded unless already here (and verified, where a digest is known)."""
        if not self.on_hub:
            return fetch(self.url, self.dest, blob_id=self.blob_id, sha256=self.sha256, progress=progress)
        found = self.local()
        if found is None:
            found = self._hub_download(progress)
        bad = Expect(self.blob_id, self.sha256).mismatch(found)
        if bad:
            raise ChecksumError(f"refused {self.address()} ({found}): {bad}; delete it from the hub cache and download again")
        return found

    def _hub_download(self, progress: bool) -> Path:
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:
            raise DownloadError(f"{self.what}: huggingface_hub is not installed (pip install huggingface_hub)") from None
        try:
            quiet = contextlib.nullcontext()
            if not progress:
                from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

                disable_progress_bars()
                quiet = contextlib.ExitStack()
                quiet.callback(enable_progress_bars)
            with quiet:
                return Path(hf_hub_download(self.repo_id, self.filename, revision=self.revision, repo_type=self.repo_type,
                                            cache_dir=self.cache_dir))
        except Exception as e:  # offline, gated, missing: many types
            by_hand = f"; {self.hint}" if self.hint else ""
            raise DownloadError(f"cannot download {self.what} from {self.address()} ({_why(e)}): is this machine offline "
                                f"(or HF_HUB_OFFLINE set)? Download it where you are online{by_hand}") from None
