"""A file server on 127.0.0.1 for the download tests, and the guard that keeps every test off the internet.

:class:`FileServer` serves bytes the tests make (``http.server`` in a thread, port 0) and can
misbehave on purpose: close the connection part-way through a body (an interrupted transfer), hold
a body at a byte offset until the test releases it (to watch progress, or to make callers overlap),
or never answer. It counts the GET requests for each path.

:func:`loopback_only` wraps :func:`rpn_viz.model.download.open_url` so that any URL whose host is not the
loopback (or an ``.invalid`` name, which never resolves) fails as an offline machine would, and
records the URL. ``tests/conftest.py`` installs it for every test; ``tests/serve_app.py`` installs it
in the app server the browser test starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import URLError
from urllib.parse import urlsplit

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in LOOPBACK_HOSTS or host.endswith(".invalid")


def loopback_only(open_url, refused: list[str]):
    """``open_url`` for tests: loopback URLs go through, any other fails like an offline machine."""

    def guarded(url: str, *args, **kwargs):
        if not is_loopback(url):
            refused.append(url)
            raise URLError("[Errno -3] Temporary failure in name resolution (tests never use the internet)")
        return open_url(url, *args, **kwargs)

    return guarded


@dataclass
class Hold:
    """Stop a body after ``at`` bytes until ``release`` is set; ``reached`` is set when it gets there."""

    at: int
    release: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)


class FileServer:
    """Serve ``files`` (path -> bytes) on 127.0.0.1 (``port`` 0: any free one); see the module docstring."""

    def __init__(self, port: int = 0) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}  # path -> close the connection after this many body bytes
        self.holds: dict[str, Hold] = {}
        self.silent: set[str] = set()  # paths answered by never answering
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._unblock = threading.Event()  # ends silent and held requests at shutdown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.requests.append(self.path)
                if self.path in server.silent:
                    server._unblock.wait(60)
                    return
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                end = server.cut_after.get(self.path, len(body))
                hold = server.holds.get(self.path)
                try:
                    if hold is not None and hold.at < end:
                        self.wfile.write(body[: hold.at])
                        self.wfile.flush()
                        hold.reached.set()
                        hold.release.wait(120)
                        self.wfile.write(body[hold.at:end])
                    else:
                        self.wfile.write(body[:end])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if end < len(body):
                    self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="loopback file server", daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def gets(self, path: str) -> int:
        with self._lock:
            return self.requests.count(path)

    def start(self) -> "FileServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._unblock.set()
        for hold in self.holds.values():
            hold.release.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FileServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
