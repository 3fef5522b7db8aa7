"""A course on this machine: N app processes behind Debian's nginx, one port, sticky sessions.

    python deploy/course.py                     # 2 processes behind http://127.0.0.1:8501
    python deploy/course.py --processes 3 --port 8600

Streamlit keeps each session in one process; a course that outgrows one process runs several behind
a reverse proxy that sends every request of a browser to the same process (README, "Serving a
course"). This script is the trial of that set-up on the loopback: it starts the app processes on
free loopback ports (``rpn-viz app``, each with the same weights cache), renders
``deploy/rpn-viz-course.nginx.conf`` for those ports into a temporary folder, runs
``/usr/sbin/nginx`` there as this user (no root, nothing written under /etc or /var) and waits
until Ctrl-C, then stops everything. ``bench/load_test.py --processes 2`` uses the same pieces.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SITE = ROOT / "deploy" / "rpn-viz-course.nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROCESS_HEADER = "X-RPN-Viz-Process"  # which app process answered (set by the nginx site)
ROUTE_COOKIE = "rpn_viz_route"

MAIN_CONF = """\
# rendered by deploy/course.py: nginx as this user, everything under this folder
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    include {run}/site.conf;
}}
"""


def render_site(site: str, listen: str, app_ports: list[int]) -> str:
    """The site file with its ``listen`` address and the upstream's ``server`` lines replaced."""
    if not app_ports:
        raise ValueError("at least one app process")
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in app_ports)
    text, count = re.subn(r"(upstream rpn_viz_course \{\n[^}]*?)((?:    server [^\n]*\n)+)",
                          lambda m: m.group(1) + servers, site, count=1)
    text, listens = re.subn(r"^(\s*)listen [^;]+;", lambda m: f"{m.group(1)}listen {listen};", text,
                            count=1, flags=re.MULTILINE)
    if count != 1 or listens != 1:
        raise ValueError("the nginx site file has no upstream rpn_viz_course with server lines, or no listen line")
    return text


def write_config(run: Path, listen: str, app_ports: list[int], site: Path = SITE) -> Path:
    """nginx.conf (and site.conf) under ``run`` for nginx run as this user; returns nginx.conf's path."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "site.conf").write_text(render_site(site.read_text(), listen, app_ports))
    conf = run / "nginx.conf"
    conf.write_text(MAIN_CONF.format(run=run))
    return conf


class Nginx:
    """``nginx`` in the foreground on ``127.0.0.1:port``, in front of the app processes on ``app_ports``."""

    def __init__(self, run: Path, port: int, app_ports: list[int]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.run = run
        self.conf = write_config(run, f"127.0.0.1:{port}", app_ports)
        check = subprocess.run([NGINX, "-t", "-p", str(run), "-c", str(self.conf)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr.strip()}")
        self.process = subprocess.Popen([NGINX, "-p", str(run), "-c", str(self.conf), "-g", "daemon off;"],
                                        stdout=subprocess.DEVNULL, stderr=open(run / "stderr.log", "w"),
                                        stdin=subprocess.DEVNULL)

    def wait_healthy(self, timeout_s: float = 60) -> None:
        """Return once Streamlit's health endpoint answers through nginx."""
        from rpn_viz.testing import wait_for_health

        wait_for_health(self.url, self.process, timeout_s, "nginx",
                        lambda: (self.run / "stderr.log").read_text()[-2000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def shared_weights_env() -> dict[str, str]:
    """The environment that gives every process the same weights cache: the weights folder and
    torch's hub cache (where downloads and the in-app weights upload go), resolved once here."""
    import torch

    from rpn_viz.model.weights import WEIGHTS_DIR_ENV, configured_weights_dir

    env = {"TORCH_HOME": str(Path(torch.hub.get_dir()).parent)}
    folder = configured_weights_dir()
    if folder is not None:
        env[WEIGHTS_DIR_ENV] = str(folder)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N rpn_viz app processes behind nginx on the loopback.")
    parser.add_argument("--processes", type=int, default=2, help="app processes (default 2)")
    parser.add_argument("--port", type=int, default=8501, help="nginx's port on 127.0.0.1 (default 8501)")
    args = parser.parse_args(argv)
    if not Path(NGINX).exists():
        print("course: nginx is not installed (apt-get install nginx)", file=sys.stderr)
        return 2
    from rpn_viz.testing import AppServer

    run = Path(tempfile.mkdtemp(prefix="rpn_viz_course_"))
    env = shared_weights_env()
    apps = [AppServer(run / f"app{i}.log", env=env) for i in range(args.processes)]
    proxy = None
    try:
        for app in apps:
            app.wait_healthy()
        proxy = Nginx(run / "nginx", args.port, [app.port for app in apps])
        proxy.wait_healthy()
        print(f"course: {proxy.url} → {', '.join(app.url for app in apps)} (logs in {run}); Ctrl-C stops it")
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it as Ctrl-C does
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if proxy is not None:
            proxy.stop()
        for app in apps:
            app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
