"""What the tests and the benchmarks share: a random checkpoint, a measured process, a served app.

Not used by the app or the CLI. Importable wherever ``rpn_viz`` is (``pip install -e .``, or the
checkout on ``sys.path``), so ``tests/`` and ``bench/`` need no ``sys.path`` games and no copies.

* :func:`random_state_dict` / :func:`save_random_checkpoint` — **the** random checkpoint: the
  official layout with every conv re-drawn (seeded) and calibrated, so that scores and boxes vary
  with the photo and "equal to ``model.rpn``" means something;
* :func:`on_device` and :func:`torchvision_input` — a model moved to another device, and the oracle's
  network input (torchvision's own detection preset, then ``model.transform`` on the model's device);
* :func:`run_measured` — a process's exit status, output, wall time and its own peak memory;
* :func:`free_port` and :class:`AppServer` — ``rpn-viz app`` on a free loopback port, started and
  waited for without fixed sleeps (:func:`wait_for_health`, also for a proxy in front of it); :data:`CHROMIUM` and :data:`CHROMIUM_FLAGS` for Playwright.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from .io.paths import app_root as _app_root

__all__ = [
    "CHROMIUM",
    "CHROMIUM_FLAGS",
    "RUN_START_MS",
    "STREAMLIT_IDLE",
    "AppServer",
    "Measured",
    "free_port",
    "random_state_dict",
    "run_measured",
    "save_random_checkpoint",
    "wait_for_health",
]

#: Debian's Chromium, driven by Playwright (``executable_path=CHROMIUM``).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]

#: A JavaScript expression, true when the Streamlit page is idle: its script state (the stApp
#: element's ``data-test-script-state``) is "notRunning", no "running" widget, nothing stale or still
#: loading. Waiting for it after an action (having first given the rerun up to 0.5 s to start) is how
#: the browser tests and the load test know a run is over, without fixed sleeps.
STREAMLIT_IDLE = ("document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning' &&"
                  " !document.querySelector('[data-testid=stStatusWidget]') &&"
                  " document.querySelectorAll('[data-testid=stSkeleton], [data-stale=true]').length === 0")
RUN_START_MS = 500  # how long an action's rerun is given to begin before the page counts as idle


# --------------------------------------------------------------------------------------------------
# devices and the oracle's input
# --------------------------------------------------------------------------------------------------

_ON_DEVICE: dict = {}


def on_device(loaded, device):
    """``loaded`` (a ``LoadedModel``) itself when it is on ``device``, else a copy moved there (made once)."""
    import copy
    import dataclasses

    import torch

    device = torch.device(device)
    if loaded.device == device:
        return loaded
    key = (id(loaded), str(device))
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = (loaded, dataclasses.replace(loaded, model=copy.deepcopy(loaded.model).to(device),
                                                       device=device))
    return _ON_DEVICE[key][1]


def torchvision_input(loaded, image):
    """The oracle's network input (an ``ImageList`` on the model's device): the photo through torchvision's
    detection weights' own preset (``weights.transforms()``) on the CPU, moved to the model's device,
    then ``model.transform`` there — what a torchvision user's ``model([tensor.to(device)])`` runs."""
    import torch
    from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights

    preset = FasterRCNN_MobileNet_V3_Large_FPN_Weights.DEFAULT.transforms()
    pixels = preset(getattr(image, "image", image)).to(loaded.device)
    with torch.inference_mode():
        images, _ = loaded.model.transform([pixels])
    return images


# --------------------------------------------------------------------------------------------------
# the random checkpoint
# --------------------------------------------------------------------------------------------------


def random_state_dict(seed: int = 0, name: str | None = None) -> dict:
    """A state dict of the official layout whose every conv is random but *calibrated* (seeded).

    Plain random weights either vanish (torchvision's untrained build: features ~1e-8, every score
    0.5) or explode through the backbone's depth. Here every conv weight is drawn from a seeded
    normal (biases 0) and rescaled, in the order the forward pass meets them, so that its output
    on a real photo has unit spread (LSUV initialisation, in one forward pass); the head's
    objectness layer is scaled to a spread of 0.5 (varied, unsaturated probabilities) and its box
    layer to 0.3 (moderate deltas). Norm layers keep torchvision's defaults (identity in eval mode);
    the second stage is torchvision's random initialisation.
    """
    import numpy as np
    import torch

    from .io.images import load_image
    from .model.models import DEFAULT_MODEL, MODELS, build
    from .io.paths import assets_dir

    generator = torch.Generator().manual_seed(seed)
    # torchvision's untrained layout (BatchNorm2d, eval mode: a fixed affine map like the trained
    # layout's FrozenBatchNorm2d), so the file loads strictly into a plain torchvision builder too.
    model = build(MODELS[name or DEFAULT_MODEL], trained_layout=False).eval()
    rpn = model.rpn
    photo = load_image(assets_dir() / "coffee.jpg").image.resize((416, 320))
    x = model.transform.normalize(torch.from_numpy(np.array(photo)).permute(2, 0, 1).float().div(255))[None]
    backbone_convs = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    head_convs = [rpn.head.conv[0][0], rpn.head.cls_logits, rpn.head.bbox_pred]
    targets = {id(rpn.head.cls_logits): 0.5, id(rpn.head.bbox_pred): 0.3}
    with torch.no_grad():
        for conv in backbone_convs + head_convs:  # draws in a fixed order, whatever the forward order
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
            if conv.bias is not None:
                conv.bias.zero_()

        def calibrate(conv: torch.nn.Module, outputs: Sequence[torch.Tensor]) -> float:
            """Rescale ``conv`` (bias 0, so its output scales alike) to its target spread."""
            spread = torch.cat([o.flatten() for o in outputs]).std().clamp_min(1e-12)
            scale = float(targets.get(id(conv), 1.0) / spread)
            conv.weight.mul_(scale)
            return scale

        # Backbone and FPN: each conv runs once per forward pass; calibrate it as it runs and hand
        # the calibrated output on, so every later conv is calibrated on calibrated inputs.
        handles = [conv.register_forward_hook(lambda m, _i, out: out * calibrate(m, [out]))
                   for conv in backbone_convs]
        features = list(model.backbone(x).values())
        for handle in handles:
            handle.remove()
        # The head's layers are shared by every level: calibrate each on all levels at once.
        conv_outputs = [rpn.head.conv[0][0](f) for f in features]
        calibrate(rpn.head.conv[0][0], conv_outputs)
        hidden = [rpn.head.conv(f) for f in features]
        for layer in (rpn.head.cls_logits, rpn.head.bbox_pred):
            calibrate(layer, [layer(h) for h in hidden])
    return model.state_dict()


def save_random_checkpoint(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write :func:`random_state_dict` to ``path`` (``torch.save``, loadable with ``weights_only=True``)."""
    import torch

    path = Path(path)
    torch.save(random_state_dict(seed), path)
    return path


# --------------------------------------------------------------------------------------------------
# a process, measured
# --------------------------------------------------------------------------------------------------

# Linux counts the parent's resident memory at fork in the child's ru_maxrss (exec keeps it), so a
# child of a big process (pytest, the benchmark) would report at least that process's size. This
# small Python process forks the command instead and reports the command's own ru_maxrss and wall time.
_LAUNCHER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as out:
    json.dump({"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss}, out)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class Measured:
    """One finished process: what it said and what it cost."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float  # the command's own wall time (not the launcher's start-up)
    maxrss_mb: float  # the command's own peak resident memory
    cpu_s: float = float("nan")  # the command's user + system CPU time (less disturbed by a busy machine)

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def run_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
                 timeout_s: float = 300, on_start=None) -> Measured:
    """Run ``argv`` (``argv[0]`` an executable path) to the end; killed with its group after ``timeout_s``.

    ``on_start(process)`` is called with the ``Popen`` right after the start (e.g. to kill it
    from elsewhere).
    """
    argv = [str(a) for a in argv]
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        report = Path(tmp) / "usage.json"
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(report), *argv], cwd=cwd,
                                env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        if on_start is not None:
            on_start(proc)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        usage = json.loads(report.read_text()) if report.is_file() else {}
        out.seek(0)
        err.seek(0)
        return Measured(argv, proc.returncode, out.read().decode(), err.read().decode(),
                        usage.get("wall_s", time.perf_counter() - start), usage.get("maxrss_kb", 0) / 1024.0,
                        usage.get("cpu_s", float("nan")))


# --------------------------------------------------------------------------------------------------
# the app, served
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, timeout_s: float, what: str,
                    log_tail: Callable[[], str]) -> None:
    """Return once Streamlit's health endpoint answers at ``url`` (the app itself, or a proxy in front
    of it); ``RuntimeError`` with ``log_tail()`` if ``process`` exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}:\n{log_tail()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return
        except OSError:
            try:  # not up yet: wait for the process (returns early if it dies), then ask again
                process.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                pass
    raise RuntimeError(f"{what} did not answer within {timeout_s:.0f} s:\n{log_tail()}")


class AppServer:
    """``rpn-viz app`` (``streamlit run app.py`` in the app's folder) on a free loopback port.

    ``with AppServer(env={...}, log=path) as server: ... server.url ...``; :meth:`wait_healthy`
    polls Streamlit's health endpoint until it answers (the ``with`` does it for you).
    """

    def __init__(self, log: str | os.PathLike, env: Mapping[str, str] | None = None,
                 args: Sequence[str] = (), app_root: str | os.PathLike | None = None,
                 command: Sequence[str] | None = None, unset: Sequence[str] = ()) -> None:
        """``command`` replaces ``rpn-viz app`` (e.g. a test's own launcher, which then gets the server
        options); ``unset`` names environment variables the server must not inherit."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log: IO[str] = open(log, "w+")
        if command is not None:
            command = list(command)
        elif app_root is not None:  # another copy of the app (e.g. a git worktree of another commit)
            command = [sys.executable, "-m", "streamlit", "run", str(Path(app_root) / "app.py")]
        else:
            command = [sys.executable, "-m", "rpn_viz", "app"]
        environment = {k: v for k, v in os.environ.items() if k not in unset}
        self.process = subprocess.Popen(
            [*command, "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false", *args],
            cwd=app_root or _app_root(), env={**environment, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_healthy(self, timeout_s: float = 120) -> None:
        """Return once the server answers; ``RuntimeError`` with the log's end if it exits or times out."""
        wait_for_health(self.url, self.process, timeout_s, "the app", self.log_tail)

    def log_tail(self, n: int = 3000) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-n:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def __enter__(self) -> "AppServer":
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
