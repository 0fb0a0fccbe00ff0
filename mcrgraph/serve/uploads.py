"""What a request may carry: a cap on its size (``BodyLimit``, before anything is parsed) and
the modality of an uploaded file told from its content, never from its name (``sniff``)."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import MCRGraphError

MAX_UPLOAD = 20 * 1024 * 1024  # bytes per request: a minute of 48 kHz stereo wav, a large photo or point cloud


class UploadTooLargeError(MCRGraphError):
    """A request body over the server's cap."""


class UnsupportedMediaError(MCRGraphError):
    """An upload whose content is no sound, image or point cloud format mcrgraph reads."""


@dataclass(frozen=True)
class Kind:
    modality: str
    suffix: str  # what the decoder (soundfile, Pillow, pointcloud) is handed
    media_type: str


def _is(data: bytes, at: int, magic: bytes) -> bool:
    return data[at : at + len(magic)] == magic


def sniff(data: bytes) -> Kind | None:
    """The format of ``data`` from its first bytes (their magic numbers), or None."""
    if _is(data, 0, b"RIFF") and _is(data, 8, b"WAVE"):
        return Kind("audio", ".wav", "audio/wav")
    if _is(data, 0, b"fLaC"):
        return Kind("audio", ".flac", "audio/flac")
    if _is(data, 0, b"OggS"):
        return Kind("audio", ".ogg", "audio/ogg")
    if _is(data, 0, b"FORM") and (_is(data, 8, b"AIFF") or _is(data, 8, b"AIFC")):
        return Kind("audio", ".aiff", "audio/aiff")
    if _is(data, 0, b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0 and data[1] & 0x06):
        return Kind("audio", ".mp3", "audio/mpeg")
    if _is(data, 0, b"\x89PNG\r\n\x1a\n"):
        return Kind("image", ".png", "image/png")
    if _is(data, 0, b"\xff\xd8\xff"):
        return Kind("image", ".jpg", "image/jpeg")
    if _is(data, 0, b"GIF87a") or _is(data, 0, b"GIF89a"):
        return Kind("image", ".gif", "image/gif")
    if _is(data, 0, b"RIFF") and _is(data, 8, b"WEBP"):
        return Kind("image", ".webp", "image/webp")
    if _is(data, 0, b"BM") and len(data) >= 26:
        return Kind("image", ".bmp", "image/bmp")
    if _is(data, 0, b"II*\x00") or _is(data, 0, b"MM\x00*"):
        return Kind("image", ".tif", "image/tiff")
    if _is(data, 0, b"\x93NUMPY"):
        return Kind("3d", ".npy", "application/octet-stream")
    if _is(data, 0, b"ply\n") or _is(data, 0, b"ply\r\n"):
        return Kind("3d", ".ply", "application/octet-stream")
    return None


def check_upload(data: bytes, cap: int = MAX_UPLOAD) -> Kind:
    if len(data) > cap:
        raise UploadTooLargeError(f"the upload has {len(data):,} bytes; this server takes at most {cap:,}")
    if not data:
        raise UnsupportedMediaError("the upload is empty")
    kind = sniff(data)
    if kind is None:
        raise UnsupportedMediaError("the upload is not a sound (wav, flac, ogg, mp3, aiff), an image (png, jpeg, gif, webp, bmp, "
                                    "tiff) or a point cloud (.npy, .ply), judged by its content")
    return kind


@contextlib.contextmanager
def saved(data: bytes, kind: Kind):
    """The upload as a temporary file with the suffix its content calls for; removed after."""
    fd, name = tempfile.mkstemp(prefix="mcrgraph-upload-", suffix=kind.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


class _Over(Exception):
    pass


class BodyLimit:
    """ASGI wrapper: a request whose body is over ``cap`` bytes gets 413 with a JSON error,
    whether it says its length up front (refused before reading) or streams it (cut off at the
    cap); nothing past the cap is read."""

    def __init__(self, app, cap: int = MAX_UPLOAD):
        self.app, self.cap = app, cap

    def __getattr__(self, name):  # the wrapped app's attributes (routes, openapi, state)
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.cap):
            return await self._refuse(send, int(length) if length.isdigit() else None)
        seen, over, started = 0, False, False

        async def limited():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.cap:
                    over = True
                    raise _Over()
            return message

        async def guarded_send(message):
            nonlocal started
            if over:
                return  # the app's own answer to the cut-off body is replaced by the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except _Over:
            pass
        if over and not started:
            await self._refuse(send, None)

    async def _refuse(self, send, length):
        size = f"{length:,} bytes" if length is not None else "more"
        body = json.dumps({"error": f"the request has {size}; this server takes at most {self.cap:,} bytes per request",
                           "type": "UploadTooLargeError", "status": 413}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
