"""The CLI contract of ``python -m rpn_viz`` (issue 8, "The CLI"; issue 6, "Bad input").

Every ``python -m rpn_viz`` process pays the torch + torchvision import (~6 s of CPU here), so the
file is organised to stay near a minute on 2 cores:

* a handful of real processes check what only a process can show (exit status, exactly one line on
  stderr, no traceback, the JSON file, the summary, no UI import, peak memory). They are started
  together, two at a time, when the first test of this module runs, and the in-process tests run
  meanwhile;
* the whole error matrix runs in-process through ``cli.main(argv)`` with warnings recorded (a
  warning would be an extra stderr line in a real process), and the odd-but-valid images through
  ``rpn_viz.trace`` with one shared untrained model.

Oracles: sizes from Pillow (``ImageOps.exif_transpose``) and torchvision's own ``model.transform``
and backbone; proposals from torchvision's own ``model.rpn`` forward; settings from ``model.rpn``'s
attributes; file hashes from ``hashlib``.
"""

from __future__ import annotations

import concurrent.futures
import copy
import hashlib
import io
import json
import re
import os
import signal
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torchvision.transforms.functional import pil_to_tensor

import rpn_viz
from rpn_viz.commands import run as cli
from rpn_viz.model import download
from rpn_viz.pipeline.export import trace_json
from rpn_viz.model.models import DEFAULT_MODEL, MODELS, model_names
from rpn_viz.testing import Measured, run_measured
from rpn_viz.model.weights import WEIGHTS_DIR_ENV

ROOT = Path(__file__).resolve().parent.parent
SPEC = MODELS[DEFAULT_MODEL]
OFFICIAL_NAME = SPEC.official.filename
UI_STACK = {"streamlit", "matplotlib", "altair", "plotly", "bokeh", "tkinter", "ui", "cv2", "pandas"}
PROCESS_TIMEOUT_S = 240


# --------------------------------------------------------------------------------------------------
# inputs the tests make
# --------------------------------------------------------------------------------------------------


def gradient_rgb(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth colour picture with some texture (compresses well, gives the network edges)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 255 * x / max(width - 1, 1)
    g = 255 * y / max(height - 1, 1)
    b = 127 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 8, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def png_claiming_size(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header claims ``width``×``height`` (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (9, 9, 9)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def exif_rotated_jpeg(path: Path) -> Path:
    """Stored 90×60 (landscape) with EXIF orientation 6: shown 60×90 (portrait)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(gradient_rgb(90, 60)).save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, scrambled_checkpoint) -> dict[str, Path]:
    """Every input file of this module, made once."""
    d = tmp_path_factory.mktemp("cli_inputs")
    f: dict[str, Path] = {}
    f["scene"] = d / "scene.jpg"
    Image.fromarray(gradient_rgb(480, 320, seed=1)).save(f["scene"], "JPEG", quality=92)
    f["exif"] = exif_rotated_jpeg(d / "exif_rotated.jpg")
    f["big"] = d / "24mp.jpg"
    big = Image.fromarray(gradient_rgb(1500, 1000, seed=2)).resize((6000, 4000), Image.Resampling.BILINEAR)
    big.save(f["big"], "JPEG", quality=80)
    f["folder"] = d / "a_folder.jpg"
    f["folder"].mkdir()
    f["missing"] = d / "no_such_photo.jpg"
    f["empty"] = d / "empty.jpg"
    f["empty"].write_bytes(b"")
    f["text"] = d / "notes.jpg"
    f["text"].write_text("These are my notes, not a photo.\nSecond line.\n")
    f["html"] = d / "saved_page.jpg"
    f["html"].write_text("<!DOCTYPE html>\n<html><head><title>x</title></head><body><img src=a.jpg></body></html>\n")
    jpeg = f["scene"].read_bytes()
    f["truncated"] = d / "truncated.jpg"
    f["truncated"].write_bytes(jpeg[: len(jpeg) * 2 // 3])
    f["bomb"] = d / "bomb.png"
    f["bomb"].write_bytes(png_claiming_size(60000, 60000))

    f["checkpoint"] = d / "my_finetuned.pth"
    ckpt = scrambled_checkpoint.read_bytes()  # the session's random checkpoint (varied scores)
    f["checkpoint"].write_bytes(ckpt)
    state = torch.load(f["checkpoint"], weights_only=True)
    f["truncated_ckpt"] = d / "truncated.pth"
    f["truncated_ckpt"].write_bytes(ckpt[: len(ckpt) // 2])
    f["corrupt_ckpt"] = d / "corrupt.pth"
    f["corrupt_ckpt"].write_bytes(b"\x00garbage, not a checkpoint" * 100)
    f["list_ckpt"] = d / "a_list.pth"
    torch.save([1, 2, 3], f["list_ckpt"])
    f["partial_ckpt"] = d / "missing_a_layer.pth"
    del state["rpn.head.cls_logits.weight"]
    torch.save(state, f["partial_ckpt"])

    f["no_weights_dir"] = d / "weights_empty"
    f["no_weights_dir"].mkdir()
    f["fake_weights_dir"] = d / "weights_fake"
    f["fake_weights_dir"].mkdir()
    (f["fake_weights_dir"] / OFFICIAL_NAME).write_bytes(b"definitely not the COCO weights" * 1000)
    f["torch_home"] = d / "torch_home"  # empty: no hub cache
    f["out"] = d / "out"
    f["out"].mkdir()
    return f


# --------------------------------------------------------------------------------------------------
# real processes, started together once
# --------------------------------------------------------------------------------------------------


Run = Measured


def child_env(files: dict[str, Path]) -> dict[str, str]:
    """The user's environment with an empty weights folder (hiding ../shared/weights) and an empty
    torch hub cache."""
    env = dict(os.environ)
    env[WEIGHTS_DIR_ENV] = str(files["no_weights_dir"])
    env["TORCH_HOME"] = str(files["torch_home"])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # two processes run at once next to the test process: one thread each, or OpenMP's spinning
    # threads fight over the 2 cores and everything gets many times slower
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    return env


class Launcher:
    """Runs ``python ARGS`` processes two at a time, with wall time and peak memory (``run_measured``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self.procs: list[subprocess.Popen] = []
        self.lock = threading.Lock()

    def submit(self, args: list[str]) -> concurrent.futures.Future:
        return self.pool.submit(self._run, args)

    def _started(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.procs.append(proc)

    def _run(self, args: list[str]) -> Run:
        return run_measured([sys.executable, *args], env=self.env, cwd=ROOT, timeout_s=PROCESS_TIMEOUT_S,
                            on_start=self._started)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            for proc in self.procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """This module's in-process torch work runs beside two CLI processes: one thread, like them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Runs:
    """The module's ``python -m rpn_viz`` processes, each started at most once, on first demand."""

    def __init__(self, cases: dict[str, list[str]], launcher: Launcher) -> None:
        self.cases, self.launcher = cases, launcher
        self.futures: dict[str, concurrent.futures.Future] = {}

    def start(self, name: str) -> concurrent.futures.Future:
        if name not in self.futures:
            self.futures[name] = self.launcher.submit(self.cases[name])
        return self.futures[name]

    def __getitem__(self, name: str) -> concurrent.futures.Future:
        return self.start(name)


def processes(*names: str) -> list[pytest.MarkDecorator]:
    """The marks of a test that reads these processes: they start early, and only when it is selected
    (``cli_processes``); each costs a torch import and a forward pass (``slow``)."""
    return [pytest.mark.cli_processes(*names), pytest.mark.slow]


def reads(*names: str):
    """Decorator form of :func:`processes`."""

    def mark(test):
        for marker in processes(*names):
            test = marker(test)
        return test

    return mark


@pytest.fixture(scope="module", autouse=True)
def runs(request, files, one_thread) -> Runs:
    """The ``python -m rpn_viz`` processes the selected tests of this module read, started together
    when the module's first test runs (they run while the in-process tests do); none when no
    selected test needs one."""
    out = files["out"]
    cases = {
        # -X importtime lists every module the real CLI run imports (on stderr)
        "exif": ["-X", "importtime", "-m", "rpn_viz", str(files["exif"]), "--untrained", "--json", str(out / "exif.json")],
        "custom": [
            "-m", "rpn_viz", str(files["scene"]), "--checkpoint", str(files["checkpoint"]), "--device", "cpu",
            "--post-nms-top-n", "7", "--nms-iou", "0.5", "--json", str(out / "custom.json"),
        ],
        "thresh": ["-m", "rpn_viz", str(files["scene"]), "--untrained", "--score-thresh", "0.9"],
        "big": ["-m", "rpn_viz", str(files["big"]), "--untrained", "--json", "-"],
        "missing": ["-m", "rpn_viz", str(files["missing"]), "--untrained"],
        "bomb": ["-m", "rpn_viz", str(files["bomb"]), "--untrained"],
        "wrong_hash": ["-m", "rpn_viz", str(files["scene"]), "--weights-dir", str(files["fake_weights_dir"]), "--no-download"],
        "bad_float": ["-m", "rpn_viz", str(files["scene"]), "--untrained", "--nms-iou", "abc"],
    }
    launcher = Launcher(child_env(files))
    runs = Runs(cases, launcher)
    for item in request.session.items:
        if item.module is request.module:
            for marker in item.iter_markers("cli_processes"):
                for name in marker.args:
                    runs.start(name)
    yield runs
    launcher.close()


def result(runs: Runs, name: str) -> Run:
    return runs[name].result(timeout=PROCESS_TIMEOUT_S * 3)


# --------------------------------------------------------------------------------------------------
# oracles
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained_model() -> rpn_viz.LoadedModel:
    return rpn_viz.load_model(untrained=True, seed=0, device="cpu")


def torchvision_input_size(model, width: int, height: int) -> list[int]:
    """[w, h] that torchvision's own ``model.transform`` resizes a width×height image to."""
    images, _ = model.transform([torch.zeros(3, height, width)])
    h, w = images.image_sizes[0]
    return [int(w), int(h)]


@torch.inference_mode()
def torchvision_levels(model, width: int, height: int) -> list[dict]:
    """Levels as torchvision's transform, backbone and AnchorGenerator see them for that image size."""
    images, _ = model.transform([torch.zeros(3, height, width)])
    features = model.backbone(images.tensors)
    ph, pw = images.tensors.shape[-2:]
    per_location = model.rpn.anchor_generator.num_anchors_per_location()
    return [
        {
            "name": str(name),
            "feature_size": [int(f.shape[-2]), int(f.shape[-1])],
            # AnchorGenerator's own stride: padded input size // grid size
            "stride": [int(ph) // int(f.shape[-2]), int(pw) // int(f.shape[-1])],
            "anchors_per_location": int(per_location[i]),
        }
        for i, (name, f) in enumerate(features.items())
    ]


@torch.inference_mode()
def torchvision_proposals(model, rgb: Image.Image, **settings) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """torchvision's own transform → backbone → rpn on an RGB picture; boxes in network-input pixels.

    ``settings`` (nms_iou, post_nms_top_n, ...) are set on a shallow copy of ``model.rpn``.
    Scores are recomputed the way torchvision's filter_proposals does (sigmoid of the kept logits)
    by asking the rpn for its kept scores through a hook on ``filter_proposals``.
    """
    rpn = copy.copy(model.rpn)
    rpn.training = False
    if "nms_iou" in settings:
        rpn.nms_thresh = settings["nms_iou"]
    if "post_nms_top_n" in settings:
        rpn._post_nms_top_n = {"training": settings["post_nms_top_n"], "testing": settings["post_nms_top_n"]}
    if "pre_nms_top_n" in settings:
        rpn._pre_nms_top_n = {"training": settings["pre_nms_top_n"], "testing": settings["pre_nms_top_n"]}
    if "score_thresh" in settings:
        rpn.score_thresh = settings["score_thresh"]
    captured = {}
    original = type(rpn).filter_proposals

    def spy(self, *args, **kwargs):
        boxes, scores = original(self, *args, **kwargs)
        captured["scores"] = scores
        return boxes, scores

    rpn.filter_proposals = spy.__get__(rpn)
    pixels = pil_to_tensor(rgb).float() / 255.0
    images, _ = model.transform([pixels])
    features = model.backbone(images.tensors)
    boxes, _ = rpn(images, features)
    h, w = images.image_sizes[0]
    return boxes[0], captured["scores"][0], (int(w), int(h))


def assert_inside(proposals: list[dict], width: float, height: float) -> None:
    eps = 2e-3  # boxes are rounded to 3 decimals in the JSON
    for p in proposals:
        x1, y1, x2, y2 = p["box"]
        assert -eps <= x1 <= x2 <= width + eps and -eps <= y1 <= y2 <= height + eps, p
        assert 0.0 <= p["score"] <= 1.0


# --------------------------------------------------------------------------------------------------
# the error matrix, in-process (one line, no traceback, no warning)
# --------------------------------------------------------------------------------------------------


@pytest.fixture()
def isolated_weights(monkeypatch, no_weights_folder):
    """No weights folder, an empty hub cache, and no network: any download attempt fails offline."""
    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "open_url", offline)
    return calls


def run_main(argv: list[str], capfd) -> tuple[int, str, str, list]:
    """``cli.main(argv)`` as the process would see it: exit status, stdout, stderr, warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    out, err = capfd.readouterr()
    return code, out, err, [str(w.message) for w in caught]


HUB = "<hub>"  # placeholder for the hub checkpoints folder in expected fragments

ERROR_CASES = {
    # name: (argv with {file} placeholders, fragments the one line must contain)
    "missing path": (["{missing}", "--untrained"], ["no_such_photo.jpg", "not found"]),
    "folder": (["{folder}", "--untrained"], ["a_folder.jpg", "folder"]),
    "empty file": (["{empty}", "--untrained"], ["empty.jpg", "empty"]),
    "plain text named .jpg": (["{text}", "--untrained"], ["notes.jpg", "plain text"]),
    "HTML named .jpg": (["{html}", "--untrained"], ["saved_page.jpg", "HTML"]),
    "truncated JPEG": (["{truncated}", "--untrained"], ["truncated.jpg", "truncated"]),
    "decompression bomb": (["{bomb}", "--untrained"], ["bomb.png", "too large"]),
    "missing weights, --no-download": (
        ["{scene}", "--weights-dir", "{no_weights_dir}", "--no-download"],
        [OFFICIAL_NAME, SPEC.official.url, "{no_weights_dir}/"],
    ),
    "missing weights, offline": (
        ["{scene}"],
        [OFFICIAL_NAME, SPEC.official.url, HUB, "URLError"],
    ),
    "wrong-hash official file": (
        ["{scene}", "--weights-dir", "{fake_weights_dir}"],
        [f"{{fake_weights_dir}}/{OFFICIAL_NAME}", "not the official", SPEC.official.url],
    ),
    "corrupt checkpoint": (["{scene}", "--checkpoint", "{corrupt_ckpt}"], ["corrupt.pth", "Cannot read"]),
    "truncated checkpoint": (["{scene}", "--checkpoint", "{truncated_ckpt}"], ["truncated.pth", "Cannot read"]),
    "checkpoint not a state dict": (["{scene}", "--checkpoint", "{list_ckpt}"], ["a_list.pth", "not a state dict"]),
    "checkpoint of another layout": (
        ["{scene}", "--checkpoint", "{partial_ckpt}"], ["missing_a_layer.pth", "does not fit"]),
    "missing checkpoint": (["{scene}", "--checkpoint", "{missing}"], ["no_such_photo.jpg", "does not exist"]),
    "untrained and checkpoint": (["{scene}", "--untrained", "--checkpoint", "{checkpoint}"], ["not both"]),
    "--nms-iou 1.5": (["{scene}", "--untrained", "--nms-iou", "1.5"], ["--nms-iou", "between 0 and 1"]),
    "--nms-iou nan": (["{scene}", "--untrained", "--nms-iou", "nan"], ["--nms-iou"]),
    "--nms-iou abc": (["{scene}", "--untrained", "--nms-iou", "abc"], ["--nms-iou", "invalid float value"]),
    "--score-thresh -0.1": (["{scene}", "--untrained", "--score-thresh", "-0.1"], ["--score-thresh"]),
    "--pre-nms-top-n 0": (["{scene}", "--untrained", "--pre-nms-top-n", "0"], ["--pre-nms-top-n", "at least 1"]),
    "--post-nms-top-n 0": (["{scene}", "--untrained", "--post-nms-top-n", "0"], ["--post-nms-top-n", "at least 1"]),
    "--post-nms-top-n 2.5": (["{scene}", "--untrained", "--post-nms-top-n", "2.5"], ["--post-nms-top-n", "invalid int"]),
    "--min-size -1": (["{scene}", "--untrained", "--min-size", "-1"], ["--min-size"]),
    "--top -1": (["{scene}", "--untrained", "--top", "-1"], ["--top"]),
    "--model nope": (["{scene}", "--untrained", "--model", "nope"], ["--model", "nope"]),
    "--device tpu": (["{scene}", "--untrained", "--device", "tpu"], ["--device", "tpu"]),
    "unknown option": (["{scene}", "--untrained", "--frobnicate"], ["--frobnicate"]),
    "no image": (["--untrained"], ["image"]),
    "--json into a missing folder": (["{scene}", "--untrained", "--json", "{missing}/out.json"], ["cannot write"]),
}


@pytest.mark.parametrize("case", ERROR_CASES)
def test_error_matrix_one_line_no_traceback(case, files, capfd, isolated_weights) -> None:
    template, fragments = ERROR_CASES[case]
    names = {k: str(v) for k, v in files.items()}
    argv = [a.format(**names) for a in template]
    code, out, err, caught = run_main(argv, capfd)
    assert code not in (0, None), f"{case}: exit status {code}"
    lines = err.splitlines()
    assert len(lines) == 1, f"{case}: stderr is not one line: {err!r}"
    assert lines[0].startswith("rpn_viz: error: ")
    assert "Traceback" not in err
    assert not re.match(r"rpn_viz: error: \w+Error: ", lines[0]), "written for the user: no 'ValueError: ' prefix"
    assert out == ""
    assert caught == [], f"{case}: warnings would add stderr lines: {caught}"
    hub = str(Path(torch.hub.get_dir()) / "checkpoints") + "/"
    for fragment in fragments:
        fragment = fragment.replace(HUB, hub).format(**names)
        assert fragment in lines[0], f"{case}: {fragment!r} not in {lines[0]!r}"
    if case.startswith("missing weights"):
        assert "random" not in lines[0]  # never a silent switch to random weights
    if case != "missing weights, offline":
        assert isolated_weights == []  # nothing tried to download


def test_layout_mismatch_names_the_key(files, capfd) -> None:
    code, out, err, caught = run_main([str(files["scene"]), "--checkpoint", str(files["partial_ckpt"])], capfd)
    assert code == cli.EXIT_BAD_INPUT and err.count("\n") == 1
    assert "rpn.head.cls_logits.weight" in err


def test_cuda_asked_for_without_cuda(files, capfd) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the no-CUDA message cannot be shown")
    code, out, err, caught = run_main([str(files["scene"]), "--untrained", "--device", "cuda"], capfd)
    assert code == cli.EXIT_BAD_INPUT and err.count("\n") == 1 and "no CUDA device" in err


# --------------------------------------------------------------------------------------------------
# odd but valid images, in-process with one model
# --------------------------------------------------------------------------------------------------


# 4:1 pictures: torchvision resizes them to 1333×333, a third of the work of a 3:2 photo
W, H = 128, 32


def _rgb_base(w: int, h: int) -> np.ndarray:
    return gradient_rgb(w, h, seed=w * 7 + h)


def _make_gray(path: Path):
    arr = _rgb_base(W, H)[..., 0]
    Image.fromarray(arr, "L").save(path)
    return np.repeat(arr[..., None], 3, axis=2)


def _make_16bit(path: Path):
    ramp = (np.arange(W * H, dtype=np.uint32).reshape(H, W) * 10).astype(np.uint16)
    Image.fromarray(ramp).save(path)  # Pillow writes I;16 PNG
    assert Image.open(path).mode in ("I;16", "I")
    eight = np.rint(ramp.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)
    return np.repeat(eight[..., None], 3, axis=2)


def _make_rgba(path: Path):
    rgb = _rgb_base(W, H)
    alpha = np.full((H, W), 255, np.uint8)
    alpha[:, : W // 2] = 0  # left half fully transparent → white
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    expected = rgb.copy()
    expected[:, : W // 2] = 255
    return expected


def _make_palette(path: Path):
    image = Image.fromarray(_rgb_base(W, H)).quantize(colors=32)
    image.save(path)
    return np.asarray(image.convert("RGB"))


def _make_cmyk(path: Path):
    image = Image.fromarray(_rgb_base(W, H)).convert("CMYK")
    image.save(path, "JPEG", quality=95)
    return np.asarray(Image.open(path).convert("RGB"))


def _make_gif(path: Path):
    frames = [Image.fromarray(_rgb_base(W, H)).quantize(colors=64)]
    frames += [Image.new("RGB", (W, H), c).quantize(colors=4) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as image:
        assert image.n_frames == 3
        return np.asarray(image.convert("RGB"))


def _make_webp(path: Path):
    rgb = _rgb_base(W, H)
    Image.fromarray(rgb).save(path, "WEBP", lossless=True)
    return rgb


def _make_1x1(path: Path):
    Image.new("RGB", (1, 1), (200, 30, 90)).save(path)
    return np.array([[[200, 30, 90]]], np.uint8)


def _make_4000x60(path: Path):
    Image.fromarray(_rgb_base(4000, 60)).save(path)
    return None  # downscaled to 2048 px wide before the network; pixels are test_images' business


ODD_IMAGES = {
    "grayscale.png": (_make_gray, 0),
    "16bit.png": (_make_16bit, 1),
    "rgba.png": (_make_rgba, 1),
    "palette.png": (_make_palette, 0),
    "cmyk.jpg": (_make_cmyk, 0),
    "animated.gif": (_make_gif, 0),
    "photo.webp": (_make_webp, 0),
    "1x1.png": (_make_1x1, 0),
    "4000x60.png": (_make_4000x60, 0),
}


@pytest.mark.parametrize("name", ODD_IMAGES)
def test_odd_but_valid_images_trace_like_torchvision(name, tmp_path, untrained_model) -> None:
    make, tolerance = ODD_IMAGES[name]
    path = tmp_path / name
    expected_rgb = make(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = rpn_viz.trace(untrained_model, path)

    with Image.open(path) as raw:
        w, h = raw.size
    assert t.preprocess.original_size == (w, h)
    if expected_rgb is None:  # 4000×60: downscaled, aspect kept
        assert t.image.size == (2048, round(60 * 2048 / 4000))
    else:
        # the pixels the network saw: Pillow's own conversion (16-bit scaled, transparency on white)
        seen = np.asarray(t.image).astype(int)
        assert seen.shape == expected_rgb.shape
        assert np.abs(seen - expected_rgb.astype(int)).max() <= tolerance
    model = untrained_model.model
    assert list(t.preprocess.input_size) == torchvision_input_size(model, *t.image.size)

    # the proposals: torchvision's own RPN on the same picture
    boxes, scores, _ = torchvision_proposals(model, t.image)
    assert torch.equal(t.result.boxes, boxes)
    assert torch.equal(t.result.scores, scores)
    doc = trace_json(t)
    assert 0 < len(doc["proposals"]) <= doc["settings"]["post_nms_top_n"]
    assert_inside(doc["proposals"], w, h)
    json.dumps(doc)  # serialisable


def test_api_and_cli_agree_on_exif_rotation(files, untrained_model) -> None:
    """The EXIF-rotated JPEG in-process: upright pixels equal Pillow's exif_transpose."""
    t = rpn_viz.trace(untrained_model, files["exif"])
    with Image.open(files["exif"]) as raw:
        assert raw.size == (90, 60)
        upright = ImageOps.exif_transpose(raw).convert("RGB")
    assert t.preprocess.original_size == upright.size == (60, 90)
    assert np.abs(np.asarray(t.image).astype(int) - np.asarray(upright).astype(int)).max() == 0


# --------------------------------------------------------------------------------------------------
# real processes: the contract
# --------------------------------------------------------------------------------------------------

CONTRACT_TYPES = {
    "image_size": list,
    "input_size": list,
    "device": str,
    "model": str,
    "weights": dict,
    "settings": dict,
    "levels": list,
    "proposals": list,
    "timings_ms": dict,
}


def imported_modules(importtime_stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[-1].strip() for line in importtime_stderr.splitlines() if line.startswith("import time:")}


@reads("exif")
def test_json_contract_on_exif_rotated_jpeg(runs, files, untrained_model) -> None:
    run = result(runs, "exif")
    assert run.returncode == 0, run.stderr[-2000:]
    other_stderr = [line for line in run.stderr_lines if not line.startswith("import time:")]
    assert other_stderr == [], "a successful run writes nothing but -X importtime lines to stderr"
    doc = json.loads((files["out"] / "exif.json").read_text())
    for key, kind in CONTRACT_TYPES.items():
        assert isinstance(doc[key], kind), key

    with Image.open(files["exif"]) as raw:
        shown = ImageOps.exif_transpose(raw).size
    assert doc["image_size"] == list(shown) == [60, 90]
    model = untrained_model.model
    assert doc["input_size"] == torchvision_input_size(model, *shown) == [800, 1200]
    assert doc["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert doc["model"] == DEFAULT_MODEL
    assert doc["weights"]["kind"] == "untrained" and doc["weights"]["seed"] == 0
    assert "untrained" in doc["weights"]["label"]
    rpn = model.rpn
    assert doc["settings"] == {
        "nms_iou": rpn.nms_thresh,
        "pre_nms_top_n": rpn._pre_nms_top_n["testing"],
        "post_nms_top_n": rpn._post_nms_top_n["testing"],
        "score_thresh": rpn.score_thresh,
        "min_size": rpn.min_size,
    }
    assert doc["settings"]["score_thresh"] == 0.05  # the model's own value, not 0.0
    levels = [{k: level[k] for k in ("name", "feature_size", "stride", "anchors_per_location")} for level in doc["levels"]]
    assert levels == torchvision_levels(model, *shown)

    proposals = doc["proposals"]
    assert 0 < len(proposals) <= doc["settings"]["post_nms_top_n"]
    for p in proposals:
        assert isinstance(p["box"], list) and len(p["box"]) == 4 and all(isinstance(v, float) for v in p["box"])
        assert isinstance(p["score"], float)
    assert_inside(proposals, *shown)
    # boxes are in the photo as shown (60 wide, 90 tall): clipped boxes touch x=60 and y=90
    assert max(p["box"][2] for p in proposals) == pytest.approx(60, abs=2e-3)
    assert max(p["box"][3] for p in proposals) == pytest.approx(90, abs=2e-3)
    scores = [p["score"] for p in proposals]
    assert scores == sorted(scores, reverse=True)  # rank order
    assert all(s == pytest.approx(0.5, abs=1e-3) for s in scores)  # untrained: features ~0
    timings = doc["timings_ms"]
    for stage in ("preprocess", "backbone", "head", "anchors", "decode", "filter", "nms", "total"):
        assert isinstance(timings[stage], (int, float)) and timings[stage] >= 0, stage


@reads("exif")
def test_summary_is_printed_alongside_json(runs) -> None:
    run = result(runs, "exif")
    text = run.stdout
    assert "untrained" in text and "photo 60×90" in text and "network input 800×1200" in text
    assert "level 0:" in text and "anchors per cell" in text
    assert "#0 " in text and "#9 " in text and "#10 " not in text  # --top defaults to 10


@reads("exif")
def test_cli_imports_no_ui_or_plotting_library(runs) -> None:
    run = result(runs, "exif")
    modules = imported_modules(run.stderr)
    assert "rpn_viz.commands.run" in modules and "torchvision" in modules  # the listing is real
    ui = sorted(m for m in modules if m.split(".")[0] in UI_STACK)
    assert ui == [], f"the CLI imported {ui}"


@reads("custom")
def test_custom_checkpoint_and_settings_flags_equal_torchvision(runs, files) -> None:
    run = result(runs, "custom")
    assert run.returncode == 0 and run.stderr == "", run.stderr[-2000:]
    doc = json.loads((files["out"] / "custom.json").read_text())
    digest = hashlib.sha256(files["checkpoint"].read_bytes()).hexdigest()
    assert doc["weights"]["kind"] == "custom" and doc["weights"]["sha256"] == digest
    assert digest[:12] in doc["weights"]["label"]

    loaded = rpn_viz.load_model(checkpoint=files["checkpoint"], device="cpu")
    rpn = loaded.model.rpn
    assert doc["settings"] == {
        "nms_iou": 0.5,
        "pre_nms_top_n": rpn._pre_nms_top_n["testing"],
        "post_nms_top_n": 7,
        "score_thresh": rpn.score_thresh,
        "min_size": rpn.min_size,
    }
    with Image.open(files["scene"]) as image:
        rgb = image.convert("RGB")
    boxes, scores, (iw, ih) = torchvision_proposals(loaded.model, rgb, nms_iou=0.5, post_nms_top_n=7)
    assert doc["input_size"] == [iw, ih] and doc["image_size"] == [480, 320]
    assert len(doc["proposals"]) == len(boxes) == 7
    expected = boxes / torch.tensor([iw / 480, ih / 320] * 2)
    got = torch.tensor([p["box"] for p in doc["proposals"]], dtype=torch.float32)
    torch.testing.assert_close(got, expected, atol=2e-3, rtol=0)
    torch.testing.assert_close(torch.tensor([p["score"] for p in doc["proposals"]]), scores, atol=1e-6, rtol=0)
    assert len(set(p["score"] for p in doc["proposals"])) == 7  # the checkpoint gives varied scores


@reads("thresh")
def test_score_threshold_above_untrained_scores_gives_no_proposals(runs) -> None:
    run = result(runs, "thresh")
    assert run.returncode == 0 and run.stderr == "", run.stderr[-2000:]
    text = run.stdout
    assert "score ≥ 0.9" in text
    assert "→ 0 after score threshold" in text and "→ 0 proposals" in text
    assert "#0 " not in text


@reads("big", "exif")
def test_24_megapixel_jpeg_in_bounded_memory(runs, untrained_model) -> None:
    run = result(runs, "big")
    assert run.returncode == 0 and run.stderr == "", run.stderr[-2000:]
    doc = json.loads(run.stdout)  # --json - writes only the JSON to stdout
    assert doc["image_size"] == [6000, 4000]
    # the photo is downscaled to 2048 px on its long side before the network
    assert doc["input_size"] == torchvision_input_size(untrained_model.model, 2048, round(4000 * 2048 / 6000))
    assert_inside(doc["proposals"], 6000, 4000)
    assert max(p["box"][2] for p in doc["proposals"]) > 3000  # in original pixels, not network input
    small = result(runs, "exif")  # same network input area (800×1200 vs 1200×800)
    # decoding 24 MP in full and feeding it as float would add > 700 MB; downscaled, it is ~0.1 GB. The
    # JPEG is decoded at a reduced scale, so it may cost no more than the small photo's run (which also
    # carries -X importtime's bookkeeping): only the upper bound says something.
    assert 300 < small.maxrss_mb and run.maxrss_mb < small.maxrss_mb + 350, (run.maxrss_mb, small.maxrss_mb)


@pytest.mark.parametrize(
    "name, fragments",
    [
        pytest.param("missing", ["no_such_photo.jpg", "not found"], marks=processes("missing")),
        pytest.param("bomb", ["bomb.png", "too large"], marks=processes("bomb")),
        pytest.param("wrong_hash", [OFFICIAL_NAME, "not the official", SPEC.official.url], marks=processes("wrong_hash")),
        pytest.param("bad_float", ["--nms-iou", "invalid float value"], marks=processes("bad_float")),
    ],
)
def test_error_process_exits_nonzero_with_one_line(runs, name, fragments) -> None:
    run = result(runs, name)
    assert run.returncode != 0
    assert len(run.stderr_lines) == 1, run.stderr
    assert run.stderr_lines[0].startswith("rpn_viz: error: ")
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    for fragment in fragments:
        assert fragment in run.stderr


# --------------------------------------------------------------------------------------------------
# bad input is answered before torch is imported (issue 13)
# --------------------------------------------------------------------------------------------------

# Runs ``rpn_viz.commands.run.console`` on every command line given (JSON list of argv lists), in one fresh
# process, and reports each exit status and stderr, then which heavy libraries got imported.
NO_TORCH_LAUNCHER = """
import contextlib, io, json, sys
from rpn_viz.commands.cli import console
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = console(argv)
        except SystemExit as exit:
            code = exit.code
    results.append({"code": code, "stderr": err.getvalue()})
heavy = sorted(m for m in ("torch", "torchvision", "streamlit", "matplotlib") if m in sys.modules)
print(json.dumps({"results": results, "imported": heavy}))
"""


def test_bad_input_is_answered_without_importing_torch(files) -> None:
    cases = {
        "missing": ([str(files["missing"]), "--untrained"], ["no_such_photo.jpg", "not found"]),
        "folder": ([str(files["folder"])], ["a_folder.jpg", "folder"]),
        "empty": ([str(files["empty"])], ["empty.jpg", "empty"]),
        "text": ([str(files["text"])], ["notes.jpg", "not an image"]),
        "html": ([str(files["html"])], ["saved_page.jpg", "HTML"]),
        "bomb": ([str(files["bomb"])], ["bomb.png", "too large"]),
        "bad float": ([str(files["scene"]), "--nms-iou", "abc"], ["--nms-iou", "invalid float value"]),
        "out of range": ([str(files["scene"]), "--nms-iou", "2"], ["--nms-iou", "between 0 and 1"]),
        "unknown option": ([str(files["scene"]), "--frobnicate"], ["unrecognized arguments", "--frobnicate"]),
        "unknown model": ([str(files["scene"]), "--model", "yolo"], ["--model", "invalid choice", "yolo"]),
        "bad device": ([str(files["scene"]), "--device", "tpu"], ["--device", "tpu"]),
        "no image": ([], ["required", "image"]),
    }
    argvs = [argv for argv, _ in cases.values()]
    env = {k: v for k, v in os.environ.items() if k != WEIGHTS_DIR_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([sys.executable, "-c", NO_TORCH_LAUNCHER, json.dumps(argvs)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["imported"] == [], f"bad input loaded {report['imported']}"
    for (name, (_, fragments)), got in zip(cases.items(), report["results"]):
        lines = got["stderr"].splitlines()
        assert got["code"] == cli.EXIT_BAD_INPUT, (name, got)
        assert len(lines) == 1 and lines[0].startswith("rpn_viz: error: "), (name, got)
        for fragment in fragments:
            assert fragment in lines[0], (name, fragment, lines[0])


def test_the_cli_knows_the_registry_without_importing_it() -> None:
    """``--model`` is checked before torch is imported, against a copy of the registry's names."""
    assert sorted(cli.MODEL_NAMES) == sorted(model_names()) and cli.DEFAULT_MODEL == DEFAULT_MODEL
    assert set(model_names()) == {*MODELS, "paper_rpn"}
    from rpn_viz.commands import learn as learn_cli
    from rpn_viz.training import config as training

    assert (learn_cli.START_PAPER, learn_cli.DEFAULT_STEPS) == (training.START_PAPER, training.DEFAULT_STEPS)
    from rpn_viz.commands import train as train_command
    from rpn_viz.training import train_set

    assert (train_command.DEFAULT_STEPS, train_command.DEFAULT_SEED, train_command.DEFAULT_LR,
            train_command.DEFAULT_JITTER) == (
        train_set.DEFAULT_STEPS, train_set.DEFAULT_SEED, train_set.DEFAULT_LR, train_set.DEFAULT_JITTER)
    from rpn_viz.model import paper

    assert (train_command.DEFAULT_TUNE_FROM, train_command.FIRST_TUNABLE, train_command.HEAD_ONLY) == (
        paper.TUNED_FROM, paper.FIRST_STRIDE16, paper.CUT)
    assert (train_command.DEFAULT_POSITIVE_IOU, train_command.NEGATIVE_IOU) == (paper.TRAIN_POSITIVE_IOU, paper.BG_IOU)
