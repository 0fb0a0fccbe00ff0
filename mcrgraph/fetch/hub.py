"""Files on the Hugging Face hub through huggingface_hub's own client (its auth, the token kept
off other origins on a redirect, retries, cache, locks and offline mode), with what that client
lacks added around it (seen against a hostile 127.0.0.1 hub, issue 24):

- a resume within a transfer is sent with ``If-Range`` (the strong ETag of the first answer), or
  without its ``Range`` when there is none, so it restarts from zero instead of splicing two
  versions; a 206 for another range, size or version is refused;
- the body is bounded by the file's listed size and by a minimum rate over a window (guard.py):
  the client's own timeout is per read and its size check comes after the whole body;
- after every transfer the file is checked against its pinned sha256, else the hub's ETag at the
  pinned revision (an LFS file's ETag is its sha256, a small file's its git blob id); a file that
  fails is deleted and fetched once more from zero, then refused with expected and found.

The bounds ride on event hooks of the client huggingface_hub builds (``set_client_factory``), and
act only inside ``watching`` (a context variable), so other users of the client see no change.
Xet-backed files (hf_xet, content-addressed chunk by chunk) are checked by the digest alone."""
from __future__ import annotations

import contextlib
import contextvars
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import ChecksumError, DownloadError
from .guard import Limits, Meter, Stalled, TransferRefused

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_watch: contextvars.ContextVar["_Watch | None"] = contextvars.ContextVar("mcrgraph_hub_watch", default=None)


class CutShort(DownloadError):
    """The body ended before the file's listed size (huggingface_hub's consistency check)."""


@dataclass
class _Watch:
    what: str
    size: int | None
    limits: Limits
    resume: bool  # False: a Range request (a resume mid-stream) is refused, the caller restarts
    validator: str | None = None  # the strong ETag of the first answer: what a resume must match


@contextlib.contextmanager
def watching(what: str, size: int | None, resume: bool = True, limits: Limits | None = None):
    """Bound every GET the hub client makes inside the block by ``size`` and the rate limits."""
    install()
    token = _watch.set(_Watch(what, size, limits or Limits.from_env(), resume))
    try:
        yield
    finally:
        _watch.reset(token)


def _on_request(request) -> None:
    w = _watch.get()
    if w is None or request.method != "GET" or "Range" not in request.headers:
        return
    if not w.resume:
        raise TransferRefused(f"{w.what}: the connection broke mid-file; mcrgraph does not splice a stream, the next try starts over")
    if w.validator:
        request.headers["If-Range"] = w.validator  # the rest of that version, or all of the new one (200)
    else:
        del request.headers["Range"]  # nothing proves the rest is of the same version: from zero


def _on_response(response) -> None:
    w = _watch.get()
    if w is None or response.request.method != "GET" or response.status_code not in (200, 206):
        return
    etag = response.headers.get("ETag")
    strong = etag if etag and not etag.startswith("W/") else None
    start = 0
    if response.status_code == 206:
        asked = _range_start(response.request.headers.get("Range"))
        first, total = _content_range(response.headers.get("Content-Range"))
        if first is None or first != asked or (w.size is not None and total != w.size):
            raise TransferRefused(f"{w.what}: asked for bytes {asked}- and got {response.headers.get('Content-Range')!r}; refused")
        if w.validator is None or strong != w.validator:
            raise TransferRefused(f"{w.what}: a resume answered with another version (ETag {etag!r}, expected {w.validator!r}); refused")
        start = first
    else:
        w.validator = strong
    length = response.headers.get("Content-Length")
    if w.size is not None and length and length.isdigit() and start + int(length) > w.size:
        raise TransferRefused(f"{w.what}: the server announces {start + int(length):,} bytes for a file of {w.size:,}; refused")
    response.stream = _metered(response, Meter(w.what, w.size, w.limits, start))


def _metered(response, meter: Meter):
    """The response body, counted as it arrives (a stream class of the client's own HTTP library)."""
    lib = sys.modules[type(response).__module__.split(".")[0]]
    inner = response.stream

    class Metered(lib.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for chunk in inner:
                meter.add(len(chunk))
                yield chunk

        def close(self) -> None:
            inner.close()

    return Metered()


def _range_start(spec: str | None) -> int | None:
    m = re.fullmatch(r"bytes=(\d+)-", (spec or "").strip())
    return int(m.group(1)) if m else None


def _content_range(spec: str | None) -> tuple[int | None, int | None]:
    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (spec or "").strip())
    if not m:
        return None, None
    return int(m.group(1)), int(m.group(3)) if m.group(3) != "*" else None


def endpoint() -> str | None:
    """``HF_ENDPOINT`` as it is now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


_installed = False


def install() -> None:
    """Add the hooks to the client huggingface_hub builds (once a process); the factory in
    force (a user's proxy settings) still builds the client."""
    global _installed
    if _installed:
        return
    import huggingface_hub
    from huggingface_hub.utils import _http

    base = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) or _http.default_client_factory

    def factory():
        client = base()
        hooks = client.event_hooks
        client.event_hooks = {"request": [*hooks.get("request", []), _on_request],
                              "response": [*hooks.get("response", []), _on_response]}
        return client

    huggingface_hub.set_client_factory(factory)
    _installed = True


# -- one file ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class HubFile:
    repo_id: str
    filename: str
    revision: str | None = None
    repo_type: str | None = None
    sha256: str | None = None  # pinned; None: the hub's ETag at the revision is what is checked
    size: int | None = None  # pinned; None: the size the hub lists
    what: str = ""

    def url(self) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo_id, self.filename, revision=self.revision, repo_type=self.repo_type, endpoint=endpoint())

    def label(self) -> str:
        return self.what or f"{self.repo_id}/{self.filename}"


def expected(f: HubFile, etag: str | None) -> tuple[str, str] | None:
    """(kind, hex) the bytes must hash to: the pin, else the hub's ETag when it is a digest."""
    if f.sha256:
        return "sha256", f.sha256.lower()
    tag = (etag or "").lower()
    if SHA256_RE.match(tag):
        return "sha256", tag
    if SHA1_RE.match(tag):
        return "git blob id", tag
    return None


def mismatch(path: Path, want: tuple[str, str] | None, size: int | None) -> str | None:
    from .checks import git_blob_id, sha256_of

    have = path.stat().st_size
    if size is not None and have != size:
        return f"size expected {size:,} bytes, found {have:,}"
    if want is None:
        return None
    kind, hexdigest = want
    found = sha256_of(path) if kind == "sha256" else git_blob_id(path)
    return None if found == hexdigest else f"{kind} expected {hexdigest}, found {found}"


def fetch(f: HubFile, *, cache_dir: str | None = None, local_dir: str | Path | None = None, progress: bool = True,
          attempts: int = 2) -> Path:
    """``f`` on this machine (the hub cache, or ``local_dir``), transferred when missing and
    checked after every transfer; DownloadError / ChecksumError with one line otherwise."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download

    meta_size, etag = None, None
    try:
        meta = get_hf_file_metadata(f.url())
        meta_size, etag = meta.size, meta.etag
    except Exception as e:  # offline, gated, missing: hf_hub_download says which below (or uses its cache)
        meta_error = e
    else:
        meta_error = None
    if f.size is not None and meta_size is not None and meta_size != f.size:
        raise ChecksumError(f"refused {f.label()} ({f.url()}): the hub lists {meta_size:,} bytes, the pin says {f.size:,}; "
                            f"the file at that address is not the pinned one")
    size = f.size if f.size is not None else meta_size
    want = expected(f, etag)
    bad = None
    for attempt in range(max(1, attempts)):
        quiet = contextlib.nullcontext() if progress else _quiet()
        try:
            with quiet, watching(f.label(), size):
                path = Path(hf_hub_download(f.repo_id, f.filename, revision=f.revision, repo_type=f.repo_type,
                                            cache_dir=cache_dir, local_dir=local_dir, endpoint=endpoint()))
        except TransferRefused as e:
            if attempt + 1 < attempts:
                continue  # the client kept nothing of it: a fresh transfer
            raise DownloadError(str(e)) from None
        except Stalled as e:
            raise DownloadError(str(e)) from None
        except OSError as e:
            if "Consistency check failed" not in str(e):  # huggingface_hub's words for a short body
                raise DownloadError(f"cannot download {f.label()} from {f.url()} ({type(e).__name__}: {e})") from None
            raise CutShort(f"{f.label()}: the body ended before the listed {size:,} bytes" if size else f"{f.label()}: cut short") from None
        except Exception as e:  # offline, gated, missing, malformed answers: many types
            from .checks import why

            cause = meta_error if meta_error is not None and etag is None else e
            raise DownloadError(f"cannot download {f.label()} from {f.url()} ({why(cause)})") from None
        bad = mismatch(path, want, size)
        if bad is None:
            return path
        _evict(path)
    raise ChecksumError(f"refused {f.label()} ({f.url()}): {bad}, twice from a fresh transfer; it was deleted and nothing was kept")


def _evict(path: Path) -> None:
    """Delete a refused file from the hub cache (the blob and the snapshot's link to it), so the
    next call transfers it again instead of finding it."""
    blob = Path(os.path.realpath(path))
    path.unlink(missing_ok=True)
    if blob != path:
        blob.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet():
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


@contextlib.contextmanager
def stream(f: HubFile) -> Iterator:
    """A file of the hub read as it arrives (a webdataset shard taken in part), through the hub
    client's own session (auth, redirects), bounded by the listed size and the rate; a break
    mid-stream is an error, never a splice (the caller starts that shard over)."""
    from huggingface_hub import get_hf_file_metadata
    from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

    from ..version import __version__

    size = f.size
    if size is None:
        with contextlib.suppress(Exception):  # no listed size: the rate alone bounds the read
            size = get_hf_file_metadata(f.url()).size
    headers = build_hf_headers(library_name="mcrgraph", library_version=__version__)
    headers["Accept-Encoding"] = "identity"
    with watching(f.label(), size, resume=False):
        with get_session().stream("GET", f.url(), headers=headers, timeout=Limits.from_env().window) as response:
            hf_raise_for_status(response)
            yield _Reader(response.iter_raw())


class _Reader:
    """A read()-able view of an iterator of bytes (what tarfile's stream mode takes). A break
    in the transfer is raised once the bytes that came before it have been read."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.buf, self.error = chunks, bytearray(), None

    def read(self, n: int = -1) -> bytes:
        while self.error is None and (n < 0 or len(self.buf) < n):
            try:
                chunk = next(self.chunks, None)
            except DownloadError as e:
                self.error = e
                break
            except Exception as e:  # the HTTP library's own errors for a cut or a timeout
                from .checks import why

                self.error = DownloadError(f"the transfer broke off ({why(e)})")
                break
            if chunk is None:
                break
            self.buf += chunk
        if not self.buf and self.error is not None:
            raise self.error
        n = len(self.buf) if n < 0 else min(n, len(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out
