"""A course behind nginx (deploy/): the site file is valid nginx, and two app processes behind it keep
every browser on one process (sticky by cookie), share the load and pass WebSocket upgrades.

The full measurement (30 browser sessions through nginx) is ``bench/load_test.py --processes 2``.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deploy.course import NGINX, PROCESS_HEADER, ROUTE_COOKIE, SITE, Nginx, render_site, write_config
from rpn_viz.testing import AppServer, free_port

needs_nginx = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (apt-get install nginx)")


def test_the_site_file_is_rendered_for_other_ports() -> None:
    text = render_site(SITE.read_text(), "127.0.0.1:9000", [9001, 9002, 9003])
    assert "listen 127.0.0.1:9000;" in text
    assert [line.strip() for line in text.splitlines() if line.strip().startswith("server 127.0.0.1")] == [
        "server 127.0.0.1:9001;", "server 127.0.0.1:9002;", "server 127.0.0.1:9003;"]
    assert "hash $rpn_viz_route consistent;" in text and "proxy_set_header Upgrade $http_upgrade;" in text


@needs_nginx
def test_nginx_accepts_the_course_configuration(tmp_path: Path) -> None:
    conf = write_config(tmp_path, f"127.0.0.1:{free_port()}", [free_port(), free_port()])
    done = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _process_for(url: str, cookie: str | None) -> tuple[str, str | None]:
    """(the app process that answered, the route cookie nginx set, if any) for one request."""
    request = urllib.request.Request(f"{url}/_stcore/health",
                                     headers={"Cookie": f"{ROUTE_COOKIE}={cookie}"} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        ours = [c for c in response.headers.get_all("Set-Cookie") or [] if c.startswith(f"{ROUTE_COOKIE}=")]
        return response.headers[PROCESS_HEADER], (ours[0] if ours else None)


@needs_nginx
@pytest.mark.slow
def test_two_processes_behind_nginx_are_sticky_and_both_serve(tmp_path: Path) -> None:
    apps = [AppServer(tmp_path / f"app{i}.log") for i in range(2)]
    proxy = None
    try:
        for app in apps:
            app.wait_healthy()
        proxy = Nginx(tmp_path / "nginx", free_port(), [app.port for app in apps])
        proxy.wait_healthy()
        addresses = {f"127.0.0.1:{app.port}" for app in apps}

        first, cookie = _process_for(proxy.url, None)  # a new browser gets its route cookie
        assert first in addresses and cookie is not None
        value = cookie.split(";")[0].split("=", 1)[1]
        assert {_process_for(proxy.url, value)[0] for _ in range(5)} == {first}  # and stays on that process
        assert _process_for(proxy.url, value)[1] is None  # nothing set again

        routes = {f"browser-{i}": _process_for(proxy.url, f"browser-{i}")[0] for i in range(32)}
        assert set(routes.values()) == addresses  # 32 browsers: both processes serve some
        assert all(_process_for(proxy.url, key)[0] == process for key, process in list(routes.items())[:8])

        upload = urllib.request.Request(f"{proxy.url}/_stcore/upload_file/no-session/no-file", data=b"x" * 300_000,
                                        method="PUT", headers={"Cookie": f"{ROUTE_COOKIE}={value}"})
        try:  # a photo-sized body reaches the app (which refuses it: no session), not a 500 from nginx
            urllib.request.urlopen(upload, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code != 500 and exc.headers[PROCESS_HEADER] == first, exc

        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as ws:  # Streamlit's WebSocket
            ws.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        f"Sec-WebSocket-Version: 13\r\nCookie: {ROUTE_COOKIE}={value}\r\n\r\n").encode())
            answer = ws.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 101"), answer.splitlines()[0]
    finally:
        if proxy is not None:
            proxy.stop()
        for app in apps:
            app.stop()
