"""Downloading one file over HTTP(S) by hand, for what no hub client serves: the official
C-MCR / Ex-MCR heads on GitHub (2-9 MB files with known git blob ids). Hub files go through
huggingface_hub (hub.py). Standard library only (urllib), every line tested against a
misbehaving 127.0.0.1 server (tests/test_hostile_network.py).

The bytes go to ``<dest>.part`` in the same folder and only a complete, verified file is renamed
onto ``dest``. A ``.part`` is resumed (Range) only with the strong ETag it was written under
(If-Range, and the 206 must carry it back); anything else (no validator, a weak one, a 206 for
another range, size or version, an answer longer than the known size) restarts from zero. The
body is bounded by the known size and by a minimum rate over a window (guard.py). Redirects:
http(s) only, never https -> http, at most MAX_HOPS, no credentials to another origin. A digest
that fails after a resumed transfer is fetched once more from zero before it is refused."""
from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChecksumError, ConfigError, DownloadError
from ..io.progress import progress_bar
from ..version import __version__
from .checks import git_blob_id, sha256_of, why  # noqa: F401  (re-exported: callers import them from here)
from .guard import Limits, Meter, Stalled, TransferRefused

CHUNK = 1 << 16
ATTEMPTS = 3  # tries per fetch; each one resumes (or restarts) the .part
MAX_HOPS = 5  # redirects followed per request (GitHub's raw address to its LFS media is one)
USER_AGENT = f"mcrgraph/{__version__} (+urllib)"
# what urllib and http.client raise for a broken answer (a garbage status line, a 70 kB header
# line, a bad port): another attempt may get a good one
MALFORMED = (http.client.HTTPException, ValueError)


class Expect:
    """What a downloaded file must be: a git blob id and/or a sha256 (lower-case hex), a size."""

    def __init__(self, blob_id: str | None = None, sha256: str | None = None, size: int | None = None):
        self.blob_id, self.sha256, self.size = (blob_id or "").lower() or None, (sha256 or "").lower() or None, size

    def __bool__(self) -> bool:
        return bool(self.blob_id or self.sha256)

    def mismatch(self, path: Path) -> str | None:
        """None when ``path`` holds the expected bytes; else 'what expected X, found Y'."""
        have = path.stat().st_size
        if self.size is not None and have != self.size:
            return f"size expected {self.size:,} bytes, found {have:,}"
        if self.blob_id and (found := git_blob_id(path)) != self.blob_id:
            return f"git blob id expected {self.blob_id}, found {found}"
        if self.sha256 and (found := sha256_of(path)) != self.sha256:
            return f"sha256 expected {self.sha256}, found {found}"
        return None


def fetch(url: str, dest: str | Path, *, blob_id: str | None = None, sha256: str | None = None, size: int | None = None,
          progress: bool = True, attempts: int = ATTEMPTS, limits: Limits | None = None, shown: Path | None = None) -> Path:
    """``url`` saved at ``dest`` (its folder is created), checked against ``blob_id`` /
    ``sha256`` / ``size``; returns ``dest``. A ``dest`` that already matches is returned with no
    transfer. Nothing is ever written at ``dest`` but a complete, verified file. ``shown``: the
    place a user would put the file by hand, when ``dest`` is a step on the way there."""
    dest = Path(dest).expanduser()
    try:
        return _fetch(url, dest, Expect(blob_id, sha256, size), progress, attempts, limits)
    except _Offline as e:
        raise DownloadError(f"{e} {_by_hand(url, shown or dest)}") from None


def _fetch(url: str, dest: Path, expect: Expect, progress: bool, attempts: int, limits: Limits | None) -> Path:
    if not expect:
        raise DownloadError(f"{url}: no digest to check it against; every file mcrgraph fetches is pinned")
    if _usable(dest, expect):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {dest.parent} for {dest.name}: {e.strerror}; choose a writable place") from None
    if not os.access(dest.parent, os.W_OK):
        raise DownloadError(f"cannot write in {dest.parent} (permission denied) to save {dest.name}; choose a writable place")
    part = dest.with_name(dest.name + ".part")
    limits = limits or Limits.from_env()
    with locked(dest):
        if _usable(dest, expect):  # another process finished it while we waited
            return dest
        resumed = _attempts(url, part, dest, expect, progress, attempts, limits)
        bad = expect.mismatch(part)
        if bad and resumed:  # a resume may have joined two versions: once more, all of it
            _discard(part)
            _attempts(url, part, dest, expect, progress, attempts, limits)
            bad = expect.mismatch(part)
        if bad:
            _discard(part)
            raise ChecksumError(f"refused {url}: {bad} (for {dest}), from a whole fresh transfer; nothing was kept. The file "
                                f"at that address is not the one mcrgraph expects: replaced upstream, or altered on the way")
        with open(part, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(part, dest)
        _validator_file(part).unlink(missing_ok=True)
    return dest


def _attempts(url, part, dest, expect, progress, attempts, limits) -> bool:
    """Up to ``attempts`` transfers into ``part``; True when the bytes kept include a resume."""
    last: BaseException | None = None
    resumed = False
    for attempt in range(max(1, attempts)):
        try:
            resumed |= _transfer(url, part, dest, expect.size, progress, limits)
            return resumed
        except _Retry as e:
            last = e.cause
            if e.restart:
                _discard(part)
                resumed = False
            if attempt + 1 < attempts:
                time.sleep(min(0.2 * 2 ** attempt, 2.0))
    kept = (f"; the {part.stat().st_size:,} bytes received are kept in {part} and the next try resumes there"
            if part.is_file() and part.stat().st_size and _validator_file(part).is_file() else "")
    raise _Offline(f"downloading {url} failed {attempts} times ({why(last)}){kept}.") from None


def _usable(dest: Path, expect: Expect) -> bool:
    return dest.is_file() and expect.mismatch(dest) is None


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _validator_file(part).unlink(missing_ok=True)


class _Offline(DownloadError):
    """The host cannot be reached at all (the message gains how to do it by hand)."""


class _Retry(Exception):
    """A transfer that stopped in a way another attempt may get past (a cut, a stall, a
    malformed answer). ``restart``: the bytes received are not worth keeping."""

    def __init__(self, cause: BaseException, restart: bool = False):
        super().__init__(str(cause))
        self.cause, self.restart = cause, restart


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, narrowed: http(s) only (urllib also follows ftp), never https down
    to http, at most MAX_HOPS, and no credentials carried to another origin (urllib copies every
    header to whatever host a 302 names)."""

    max_redirections = MAX_HOPS

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if new.scheme not in ("http", "https"):
            raise DownloadError(f"{req.full_url} redirects to {newurl!r}; mcrgraph follows http(s) only")
        if old.scheme == "https" and new.scheme == "http":
            raise DownloadError(f"{req.full_url} redirects to {newurl!r}, from https down to plain http; refused")
        new.port  # a bad port raises ValueError here: a malformed answer, retried
        out = super().redirect_request(req, fp, code, msg, headers, newurl)
        if out is not None and (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
            for name in ("Authorization", "Cookie", "Proxy-authorization"):
                out.remove_header(name)
        return out


_OPENER = urllib.request.build_opener(_Redirects)


def _request(url: str, headers: dict, timeout: float):
    """The response, or: DownloadError (final), _Retry (worth another attempt)."""
    try:
        return _OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400:  # urllib's loop error runs to three lines; one is enough
            raise DownloadError(f"{url}: more than {MAX_HOPS} redirects (a loop?); check the address") from None
        if e.code == 416:  # the .part is not a prefix the server knows: start over
            raise _Retry(e, restart=True) from None
        if e.code >= 500 or e.code in (408, 429):
            raise _Retry(e) from None
        raise DownloadError(f"{url} answered HTTP {e.code} {e.reason}; check the address (or the mirror set for it)") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, DownloadError):
            raise reason from None
        if isinstance(reason, (socket.timeout, TimeoutError, ConnectionResetError)) or isinstance(reason, MALFORMED):
            raise _Retry(e) from None
        raise _Offline(f"cannot reach {url} ({why(e)}): is this machine offline?") from None
    except (socket.timeout, TimeoutError, ConnectionError) as e:
        raise _Retry(e) from None
    except MALFORMED as e:  # status line, header line, Location's port
        raise _Retry(e) from None


def _transfer(url: str, part: Path, dest: Path, size: int | None, progress: bool, limits: Limits) -> bool:
    """One attempt: append to ``part`` from its size when the server answers for the same
    version, else write it from zero. True when this attempt appended (a resume)."""
    have = part.stat().st_size if part.is_file() else 0
    validator = _validator_file(part)
    tag = _strong(validator.read_text()) if have and validator.is_file() else None
    if have and (tag is None or (size is not None and have >= size)):
        _discard(part)  # nothing proves the .part is a prefix of the file the server has now
        have = 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers.update({"Range": f"bytes={have}-", "If-Range": tag})
    response = _request(url, headers, limits.window)
    with response:
        start = _start_of(response, have, tag, size)
        if not start:  # remember which version the .part holds: a strong ETag, or none (no resume)
            strong = _strong(response.headers.get("ETag"))
            validator.write_text(strong) if strong else validator.unlink(missing_ok=True)
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if size is not None and length is not None and start + length > size:
            raise _Retry(TransferRefused(f"the server announces {start + length:,} bytes for a file of {size:,}"), restart=True)
        meter = Meter(dest.name, size, limits, start)
        try:
            with open(part, "ab" if start else "wb") as f, progress_bar(size or (start + length if length else None), dest.name,
                                                                       unit="B", enabled=progress, unit_scale=True,
                                                                       initial=start) as bar:
                while block := response.read1(CHUNK):  # what has arrived, not a full CHUNK: the rate sees each byte
                    meter.add(len(block))
                    f.write(block)
                    bar.update(len(block))
        except TransferRefused as e:
            raise _Retry(e, restart=True) from None
        except (Stalled, http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError) as e:
            raise _Retry(e) from None
        if length is not None and meter.total < start + length:  # closed early without an error
            raise _Retry(ConnectionError(f"connection closed after {meter.total:,} of {start + length:,} bytes"))
        if size is not None and meter.total < size:
            raise _Retry(ConnectionError(f"the body ended after {meter.total:,} of the file's {size:,} bytes"))
    return bool(start)


def _start_of(response, have: int, tag: str | None, size: int | None) -> int:
    """Where the body starts in the file: ``have`` for a 206 that answers the range and version
    asked, 0 for a 200; anything else restarts from zero."""
    if response.status != 206:
        return 0
    spec = response.headers.get("Content-Range", "")
    first, total = _content_range(spec)
    if not have or first != have or (size is not None and total != size):
        raise _Retry(TransferRefused(f"the server answered a range other than the one asked ({spec!r})"), restart=True)
    if _strong(response.headers.get("ETag")) != tag:
        raise _Retry(TransferRefused(f"a resume answered with another version of the file (ETag "
                                     f"{response.headers.get('ETag')!r}, the part holds {tag})"), restart=True)
    return have


def _content_range(spec: str) -> tuple[int | None, int | None]:
    """(first byte, full size or None) of ``bytes FIRST-LAST/TOTAL``; (None, None) if unreadable."""
    import re

    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", spec.strip())
    if not m or int(m.group(2)) < int(m.group(1)):
        return None, None
    return int(m.group(1)), int(m.group(3)) if m.group(3) != "*" else None


def _strong(tag: str | None) -> str | None:
    """An ETag usable in If-Range (RFC 9110: strong validators only), or None."""
    tag = (tag or "").strip()
    return tag if len(tag) >= 2 and tag[0] == tag[-1] == '"' else None


def _validator_file(part: Path) -> Path:
    return part.with_name(part.name + ".version")


def remote_size(url: str, timeout: float = 15.0) -> int | None:
    """The size the server reports for ``url`` (a HEAD request), or None when it does not say
    or cannot be reached."""
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            n = r.headers.get("Content-Length")
            return int(n) if n and n.isdigit() else None
    except (urllib.error.URLError, OSError, DownloadError, *MALFORMED):
        return None


_held = threading.local()  # folders this thread holds the lock of (flock is per open file, not per process)


@contextlib.contextmanager
def locked(dest: Path):
    """One writer per folder across processes and threads (two `mcrgraph download` at once
    would otherwise append to the same .part). The folder itself is locked, so no lock file is
    left behind; taken again by the thread that holds it, it is a no-op (the official heads'
    LFS steps run under one lock and call fetch inside it). A no-op where fcntl is missing."""
    folder = str(Path(dest).parent.resolve())
    held = _held.__dict__.setdefault("folders", set())
    try:
        import fcntl
    except ImportError:
        yield
        return
    if folder in held:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(folder)
        yield
    finally:
        held.discard(folder)
        os.close(fd)  # releases the lock


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
    ``mcrgraph download``. Either a plain address (``url``, saved at ``dest``, with a git blob id
    or sha256) or a file of a Hugging Face hub repository (``repo_id`` + ``filename`` at a pinned
    ``revision``, saved in the hub cache, or ``cache_dir``, where the plugin looks it up).

    Every hub file has its pinned ``sha256`` and ``size``, or says in ``unpinned`` why not (a
    visible state: ``download --dry-run`` prints it); then the hub's own ETag at the pinned
    revision (an LFS file's sha256, a small file's git blob id) is what the bytes are checked
    against. ``hint`` says how to supply the file by hand."""

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
    unpinned: str = ""  # why no sha256 (or no revision) is pinned, in a few words; "" when pinned
    licence: str = ""
    hint: str = ""

    def __post_init__(self):
        if bool(self.url) == bool(self.repo_id and self.filename) or (self.url and self.dest is None):
            raise ConfigError(f"{self.what}: a Download is either url + dest or repo_id + filename")
        if self.url and not (self.blob_id or self.sha256):
            raise ConfigError(f"{self.what}: a file fetched from an address needs a pinned git blob id or sha256")
        if self.on_hub and not (self.sha256 and self.revision and len(self.revision) == 40) and not self.unpinned:
            raise ConfigError(f"{self.what}: a hub file needs a pinned revision (a commit) and sha256, or says why not (unpinned)")

    @property
    def on_hub(self) -> bool:
        return not self.url

    def digest(self) -> str:
        """What the bytes are checked against, in words (for ``download --dry-run``)."""
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.blob_id:
            return f"git blob id {self.blob_id}"
        at = f"revision {self.revision}" if self.revision else "the latest revision"
        return f"NOT PINNED ({self.unpinned}): checked against the hub's ETag at {at}"

    def hub_file(self):
        from .hub import HubFile

        return HubFile(self.repo_id, self.filename, revision=self.revision, repo_type=self.repo_type, sha256=self.sha256,
                       size=self.size, what=self.what)

    def address(self) -> str:
        """Where the file comes from, as a URL a browser can open."""
        if self.url:
            return self.url
        try:  # the hub client's own address for it (HF_ENDPOINT moves it to a mirror)
            return self.hub_file().url()
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
            from huggingface_hub import get_hf_file_metadata

            return get_hf_file_metadata(self.address(), timeout=timeout).size
        except Exception:  # offline, hub errors: the size is simply unknown
            return None

    def fetch(self, progress: bool = True) -> Path:
        """The file, downloaded unless already here, and checked (a local one against its pin)."""
        if not self.on_hub:
            return fetch(self.url, self.dest, blob_id=self.blob_id, sha256=self.sha256, size=self.size, progress=progress)
        found = self.local()
        if found is not None:  # checked when it was transferred; here only its size (hashing GBs on every call is not)
            bad = Expect(size=self.size).mismatch(found)
            if bad is None:
                return found
            raise ChecksumError(f"refused {found} ({self.what}): {bad}; delete it and run `mcrgraph download` again")
        from . import hub

        try:
            return hub.fetch(self.hub_file(), cache_dir=self.cache_dir, progress=progress)
        except ImportError:
            raise DownloadError(f"{self.what}: huggingface_hub is not installed (pip install huggingface_hub)") from None
        except ChecksumError:
            raise
        except DownloadError as e:
            by_hand = f"; {self.hint}" if self.hint else ""
            raise DownloadError(f"{e}: is this machine offline (or HF_HUB_OFFLINE set)? Download it where you are online{by_hand}") from None
