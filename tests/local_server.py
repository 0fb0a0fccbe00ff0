"""A file server on 127.0.0.1 (a free port) from the standard library, for download tests
without the internet. It counts requests, may honour or ignore Range, and may cut the
connection after N bytes for the first few requests of a file."""
from __future__ import annotations

import contextlib
import http.server
import threading
from dataclasses import dataclass, field


@dataclass
class Served:
    files: dict[str, bytes] = field(default_factory=dict)  # URL path -> bytes
    ranges: bool = True  # honour "Range: bytes=N-"
    cut_after: int | None = None  # close the connection after this many body bytes ...
    cuts: int = 0  # ... for this many requests
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)
    url: str = ""  # http://127.0.0.1:PORT once serving
    statuses: list[int] = field(default_factory=list)  # the status of every answer, in order
    headers: dict[str, str] = field(default_factory=dict)  # sent with every file (a hub's X-Repo-Commit)
    etags: dict[str, str] = field(default_factory=dict)  # URL path -> ETag sent (and checked against If-Range)

    def gets(self, path: str | None = None) -> list[tuple[str, str, str | None]]:
        return [r for r in self.requests if r[0] == "GET" and (path is None or r[1] == path)]


def _handler(served: Served):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def send_response(self, code, message=None):
            served.statuses.append(code)
            super().send_response(code, message)

        def _head(self, body_only=False):
            served.requests.append((self.command, self.path, self.headers.get("Range")))
            data = served.files.get(self.path)
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None, 0
            start = 0
            rng = self.headers.get("Range")
            etag = served.etags.get(self.path)
            if rng and self.headers.get("If-Range") and self.headers.get("If-Range") != etag:
                rng = None  # the client holds another version: send it all
            if rng and served.ranges and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None, 0
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            if etag:
                self.send_header("ETag", etag)
            for key, value in served.headers.items():
                self.send_header(key, value)
            if served.ranges:
                self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            return data, start

        def do_HEAD(self):
            self._head()

        def do_GET(self):
            data, start = self._head()
            if data is None:
                return
            body = data[start:]
            if served.cuts > 0 and served.cut_after is not None:
                served.cuts -= 1
                self.wfile.write(body[: served.cut_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the peer sees the stream end early
                return
            self.wfile.write(body)

    return Handler


class LocalServer:
    def __init__(self, served: Served):
        self.served = served
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        self.served.url = self.url
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@contextlib.contextmanager
def serve(files: dict[str, bytes]):
    """A running server for ``files``; yields its Served (``.url``, ``.requests``)."""
    served = Served(files=dict(files))
    with LocalServer(served):
        yield served


def block_internet(monkeypatch) -> list[str]:
    """Refuse every name lookup and connection that is not to this machine (a test that
    reaches out fails, and says where); returns the refused hosts."""
    import socket

    refused: list[str] = []
    local = {"127.0.0.1", "localhost", "::1"}
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host not in local and host is not None:
            refused.append(str(host))
            raise socket.gaierror(f"test: no internet (looked up {host})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in local:
            refused.append(str(address[0]))
            raise ConnectionRefusedError(f"test: no internet (connect to {address[0]})")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return refused
