"""A 127.0.0.1 server that misbehaves on purpose, for the download tests (tests/test_hostile_network.py):
each path is served by a route, a function of the request handler, so a test says in a line
what the server does (cut the body, dribble a byte a second, answer another range or version,
redirect to ftp, send a garbage status line ...). Every request is logged with its headers, and
the bytes each answer managed to send are counted."""
from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Log:
    method: str
    path: str
    headers: object  # the request's headers (case-insensitive .get and `in`)


class Hostile(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.routes: dict[str, Callable] = {}
        self.log: list[Log] = []
        self.sent: dict[str, int] = {}  # path -> body bytes written (before the client hung up)
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def gets(self, path: str | None = None) -> list[Log]:
        return [r for r in self.log if r.method == "GET" and (path is None or r.path == path)]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Hostile

    def log_message(self, *args):
        pass

    def _route(self):
        path = self.path.split("?", 1)[0]
        self.server.log.append(Log(self.command, path, self.headers))
        route = self.server.routes.get(path)
        if route is None:
            self.send(404, {}, b"")
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_HEAD = _route

    # -- what a route uses ------------------------------------------------------------------
    def send(self, status: int, headers: dict, body: bytes, *, length: int | None = None, trickle: float = 0.0,
             cut: int | None = None) -> None:
        """Status, headers (Content-Length: ``length`` or the body's, unless given as None in
        ``headers``), then the body (not for HEAD): whole, or ``cut`` short (the connection then
        closes), or a byte every ``trickle`` seconds."""
        self.send_response(status)
        headers = dict(headers)
        if "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body) if length is None else length)
        for k, v in headers.items():
            if v is not None:
                self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        path = self.path.split("?", 1)[0]
        body = body if cut is None else body[:cut]
        step = 1 if trickle else 1 << 16
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            self.server.sent[path] = self.server.sent.get(path, 0) + len(body[i:i + step])
            if trickle:
                self.wfile.flush()
                time.sleep(trickle)
        self.wfile.flush()
        if cut is not None or headers.get("Content-Length") is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def raw(self, data: bytes) -> None:
        """Bytes on the wire as they are (a malformed answer), then close."""
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True

    def asked(self) -> int | None:
        """The start of a ``Range: bytes=N-`` request, or None."""
        rng = self.headers.get("Range") or ""
        return int(rng[6:-1]) if rng.startswith("bytes=") and rng.endswith("-") and rng[6:-1].isdigit() else None


# -- routes -----------------------------------------------------------------------------------
def honest(data: bytes, etag: str | None = '"v1"', extra: dict | None = None, cut_first: int | None = None) -> Callable:
    """A correct server: Range honoured when If-Range matches the ETag (else all of it, 200);
    ``cut_first`` cuts the first answer's body after that many bytes."""
    state = {"n": 0}

    def route(h: Handler):
        state["n"] += 1
        start = h.asked()
        if start is not None and h.headers.get("If-Range") not in (None, etag):
            start = None
        headers = {"Accept-Ranges": "bytes", **({"ETag": etag} if etag else {}), **(extra or {})}
        cut = cut_first if state["n"] == 1 and h.command == "GET" else None
        if start:
            if start >= len(data):
                h.send(416, {"Content-Range": f"bytes */{len(data)}"}, b"")
                return
            h.send(206, {**headers, "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}, data[start:],
                   cut=cut)
        else:
            h.send(200, headers, data, cut=cut)
        if h.command == "GET":
            state.setdefault("gets", 0)

    return route


def sequence(*routes: Callable) -> Callable:
    """Each GET answered by the next route (the last one repeats); HEAD by the last."""
    state = {"i": 0}

    def route(h: Handler):
        if h.command == "HEAD":
            routes[-1](h)
            return
        r = routes[min(state["i"], len(routes) - 1)]
        state["i"] += 1
        r(h)

    return route


def redirect(location: str, code: int = 302) -> Callable:
    return lambda h: h.send(code, {"Location": location}, b"")


def raw(data: bytes) -> Callable:
    return lambda h: h.raw(data)


def point_hub_at(monkeypatch, url: str) -> None:
    """huggingface_hub's client talks to ``url`` instead of the hub, online: the settings it
    reads at import (its endpoint, its address template, its offline switch) and HF_ENDPOINT."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@contextlib.contextmanager
def hostile():
    server = Hostile()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
