"""Speed and memory of rpn_viz, measured side by side with plain torchvision in one run.

    python bench/benchmark.py                      # table on stdout
    python bench/benchmark.py --json bench.json    # and every number as JSON
    python bench/benchmark.py --quick              # fewer repetitions (~1 minute)
    python bench/benchmark.py --device cuda --models all --train-command   # a GPU machine (issue 22)

What it measures (issue 6, "Benchmark"):

* warm forward: ``rpn_viz.trace`` (every intermediate kept) vs torchvision's plain
  ``model.transform`` + ``model.backbone`` + ``model.rpn`` on the same decoded photo, interleaved,
  median of N runs after warm-up; the proposals of both are checked to be identical first;
* a slider move: ``trace.refilter(nms_iou=0.6)`` on ~1000 proposals, and the derivation of every
  suppressed box's suppressor (``result.suppressed_by``);
* cold start to first result: wall time of ``python -m rpn_viz PHOTO --json`` vs a bare
  torchvision script doing the same forward, after one untimed run of each (file cache, first
  install); peak memory (``ru_maxrss``) of both processes; the import of torch + torchvision alone;
* on a CUDA machine: the same warm forward on the GPU and the RPN alone (the paper reports ~10 ms);
  ``--device cuda --models all`` times every model (the paper's RPN and the four COCO layouts) on the
  GPU against torchvision's own forward there (goal: ≤ 1.10× on CUDA, ≤ 1.05× on the CPU);
* ``--train-command``: ``python -m rpn_viz train`` (the shipped head's recipe: 4,000 steps on the 95
  bundled training photos, each with its mirror and 4 jittered views, the last 3 backbone blocks fine-tuned too;
  feature preparation included) as a
  process on the chosen device (goal on a GPU: ≤ 20 s; on 2 CPU cores: ≤ 10 minutes);
* extra rows from other modules (``EXTRA_ROWS``): a training step of ``rpn_viz.training.session`` when present;
* then the app: every step's rerun times server side (``bench/app_steps.py``, AppTest) and what a
  student waits for in Chromium (``bench/browser_steps.py``): step switch and slider release to the
  pictures shown, a 12-megapixel upload to the first pictures.

Models: the official COCO weights when the file is on this machine; otherwise a checkpoint made here
from torchvision's architecture with weights re-drawn from a seeded normal (so scores vary as a
trained model's do and NMS has real work), plus the untrained model (every score 0.5).

One script (~570 lines) on purpose: each section below measures one row group of the same table into
the same :class:`Context`, in the order the table prints them, and reads top to bottom as the table
does; what it shares with the tests (the random checkpoint, measured processes) is ``rpn_viz.testing``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import rpn_viz  # noqa: E402
from rpn_viz.io.images import load_image  # noqa: E402
from rpn_viz.model.device import device_name, resolve_device, tf32_allowed  # noqa: E402
from rpn_viz.model.models import DEFAULT_MODEL, MODELS, PAPER_RPN, LoadedModel, load_model  # noqa: E402
from rpn_viz.testing import (  # noqa: E402
    Measured, random_state_dict, run_measured, save_random_checkpoint, torchvision_input,
)
from rpn_viz.model.weights import candidate_paths, is_available  # noqa: E402

DEFAULT_IMAGE = ROOT / "assets" / "coffee.jpg"
GOAL_RATIO = {"cpu": 1.05, "cuda": 1.10}  # traced / torchvision's own forward, per device type
GOAL_TRAIN_STEP_CUDA_MS = 10.0
GOAL_TRAIN_COMMAND_CUDA_S = 20.0
GOAL_REFILTER_MS = 50.0
GOAL_COLD_S = 5.0
GOAL_CLI_ABOVE_IMPORT_S = 1.0
PAPER_RPN_GPU_MS = 10.0


# --------------------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table (and of the JSON)."""

    section: str
    model: str
    what: str
    median: float | None = None
    best: float | None = None  # the minimum: least disturbed by other work on the machine
    unit: str = "ms"
    goal: str = ""
    met: bool | None = None
    runs: int = 0
    note: str = ""
    samples: list[float] = field(default_factory=list)


@dataclass
class Context:
    """What every measurement (and every EXTRA_ROWS hook) gets."""

    args: argparse.Namespace
    image_path: Path
    models: list[tuple[str, LoadedModel, list[str]]]  # (label, model, CLI flags that load it)
    workdir: Path
    rows: list[Row] = field(default_factory=list)


def median_min(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), min(samples)


# --------------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------------


def every_model(args: argparse.Namespace, workdir: Path) -> list[tuple[str, LoadedModel, list[str]]]:
    """``--models all``: the paper's RPN (its shipped head) and each COCO layout, official weights when
    present, else the tests' calibrated random checkpoint of that architecture (``rpn_viz.testing``)."""
    device = args.device
    chosen = []
    try:
        chosen.append(("paper RPN (shipped head)", load_model(PAPER_RPN, allow_download=False, device=device),
                       ["--model", PAPER_RPN, "--no-download"]))
    except Exception as exc:  # noqa: BLE001 - the ImageNet file may be absent; the COCO layouts still run
        print(f"note: paper RPN skipped: {exc}", file=sys.stderr)
    for name, spec in MODELS.items():
        if is_available(spec.official):
            chosen.append((f"{name} (official)", load_model(name, allow_download=False, device=device),
                           ["--model", name, "--no-download"]))
            continue
        path = workdir / f"random_{name}.pth"
        torch.save(random_state_dict(0, name), path)
        chosen.append((f"{name} (random ckpt)", load_model(name, checkpoint=path, device=device),
                       ["--model", name, "--checkpoint", str(path)]))
    return chosen


def choose_models(args: argparse.Namespace, workdir: Path) -> list[tuple[str, LoadedModel, list[str]]]:
    """Official weights when present; else the tests' calibrated random checkpoint (``rpn_viz.testing``) and the untrained model."""
    if args.models == "all":
        return every_model(args, workdir)
    device = args.device
    spec = MODELS[DEFAULT_MODEL]
    if is_available(spec.official):
        loaded = load_model(DEFAULT_MODEL, allow_download=False, device=device)
        return [("official COCO", loaded, ["--no-download"])]
    checkpoint = save_random_checkpoint(workdir / "random_seed0.pth", seed=0)
    custom = load_model(DEFAULT_MODEL, checkpoint=checkpoint, device=device)
    untrained = load_model(DEFAULT_MODEL, untrained=True, seed=0, device=device)
    return [
        ("random ckpt", custom, ["--checkpoint", str(checkpoint)]),
        ("untrained (seed 0)", untrained, ["--untrained"]),
    ]


# --------------------------------------------------------------------------------------------------
# warm forward: traced vs torchvision
# --------------------------------------------------------------------------------------------------


def synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def plain_forward(loaded: LoadedModel, picture) -> tuple[torch.Tensor, Any]:
    """torchvision's own first stage, nothing kept: its preset, then transform → backbone → rpn on the device."""
    model = loaded.model
    images = torchvision_input(loaded, picture)
    with torch.inference_mode():
        features = model.backbone(images.tensors)
        boxes, _ = model.rpn(images, features)
    return boxes[0], images


def interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int, sync: Callable[[], None]) -> dict[str, list[float]]:
    """Milliseconds of each function, run in turn (A B, B A, A B, ...): load on the machine and
    cache effects of going first or second hit every function alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for i in range(runs):
        for name, fn in order if i % 2 == 0 else order[::-1]:
            sync()
            start = time.perf_counter()
            fn()
            sync()
            samples[name].append((time.perf_counter() - start) * 1000.0)
    return samples


def bench_forward(ctx: Context, label: str, loaded: LoadedModel, section: str = "warm forward") -> rpn_viz.Trace:
    args = ctx.args
    photo = load_image(ctx.image_path)  # decoded once: both sides start from the same RGB picture
    t = rpn_viz.trace(loaded, photo)
    boxes, _ = plain_forward(loaded, photo.image)
    identical = torch.equal(t.result.boxes, boxes.cpu())
    if not identical:  # same ops in the same order: anything else is a bug worth seeing
        print(f"warning: {label}: rpn_viz.trace proposals differ from model.rpn's", file=sys.stderr)
    stages: list[dict[str, float]] = []
    samples = interleaved(
        {"trace": lambda: stages.append(rpn_viz.trace(loaded, photo).timings_ms),
         "plain": lambda: plain_forward(loaded, photo.image)},
        args.runs,
        args.warmup,
        synchronizer(loaded.device),
    )
    tm, tb = median_min(samples["trace"])
    pm, pb = median_min(samples["plain"])
    # each traced run next to its torchvision run: drift in the machine's load cancels out
    paired = statistics.median(a / b for a, b in zip(samples["trace"], samples["plain"]))
    dev = loaded.device.type
    goal = GOAL_RATIO.get(dev, GOAL_RATIO["cpu"])
    ctx.rows += [
        Row(section, label, f"rpn_viz.trace ({dev})", tm, tb, runs=args.runs, samples=samples["trace"],
            note=f"{len(t.result.boxes)} proposals, identical to model.rpn: {'yes' if identical else 'NO'}"),
        Row(section, label, f"torchvision transform+backbone+rpn ({dev})", pm, pb, runs=args.runs, samples=samples["plain"]),
        Row(section, label, "ratio traced / torchvision", paired, tb / pb, unit="×", goal=f"≤ {goal}×",
            met=paired <= goal, runs=args.runs,
            note=f"median of the {args.runs} paired ratios (ratio of medians {tm / pm:.3f}×); best: ratio of minima"),
    ]
    timed = stages[-args.runs :]
    stage_medians = {k: statistics.median(s[k] for s in timed) for k in timed[0]}
    ctx.rows.append(
        Row(section, label, "trace stages (medians)", None, None, unit="",
            note=", ".join(f"{k} {v:.0f}" for k, v in stage_medians.items()) + " ms")
    )
    return t


# --------------------------------------------------------------------------------------------------
# slider re-filter and NMS suppressors
# --------------------------------------------------------------------------------------------------


def bench_refilter(ctx: Context, label: str, t: rpn_viz.Trace) -> None:
    runs = max(ctx.args.runs * 2, 5)
    results = []
    refilter_ms, suppressor_ms = [], []
    for i in range(runs + 2):
        iou = 0.6 if i % 2 == 0 else 0.59  # a slider moving back and forth
        start = time.perf_counter()
        result = t.refilter(nms_iou=iou)
        mid = time.perf_counter()
        _ = result.suppressed_by
        end = time.perf_counter()
        if i >= 2:
            refilter_ms.append((mid - start) * 1000.0)
            suppressor_ms.append((end - mid) * 1000.0)
            results.append(result)
    both = [a + b for a, b in zip(refilter_ms, suppressor_ms)]
    last = results[-1]
    counts = last.counts()
    n_props = counts["proposals (post-NMS top-N)"]
    n_cand = counts["candidates (pre-NMS top-N per level)"]
    suppressed = int((last.suppressed_by >= 0).sum())
    ctx.rows += [
        Row("slider move", label, "trace.refilter(nms_iou=0.6)", *median_min(refilter_ms), goal=f"< {GOAL_REFILTER_MS:g} ms",
            met=statistics.median(refilter_ms) < GOAL_REFILTER_MS, runs=runs, samples=refilter_ms,
            note=f"{n_cand} candidates → {n_props} proposals"),
        Row("slider move", label, "result.suppressed_by (who suppressed whom)", *median_min(suppressor_ms), runs=runs,
            samples=suppressor_ms, note=f"{suppressed} suppressed boxes traced to their suppressor"),
        Row("slider move", label, "refilter + suppressors", *median_min(both), runs=runs, samples=both,
            note="what a slider move costs on the NMS page, which also shows who suppressed whom"),
    ]


# --------------------------------------------------------------------------------------------------
# cold start: the CLI process vs a bare torchvision script
# --------------------------------------------------------------------------------------------------

BARE_SCRIPT = textwrap.dedent(
    """
    # The same first stage as `python -m rpn_viz`, with nothing but torch, torchvision and Pillow.
    import sys
    import torch
    from PIL import Image
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn
    from torchvision.transforms.functional import pil_to_tensor

    image, weights = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None)
    if weights != "--untrained":
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    with torch.inference_mode():
        pixels = pil_to_tensor(Image.open(image).convert("RGB")).float() / 255
        images, _ = model.transform([pixels])
        boxes, _ = model.rpn(images, model.backbone(images.tensors))
    print(len(boxes[0]), "proposals")
    """
)


Proc = Measured


def run_process(argv: list[str], timeout_s: float = 300) -> Proc:
    """Run ``argv``: its wall time and its own peak resident memory (``rpn_viz.testing.run_measured``)."""
    return run_measured(argv, cwd=ROOT, timeout_s=timeout_s)


def bench_cold(ctx: Context, label: str, flags: list[str]) -> None:
    args = ctx.args
    bare = ctx.workdir / "bare_torchvision.py"
    bare.write_text(BARE_SCRIPT)
    weights_arg = "--untrained"
    if "--checkpoint" in flags:
        weights_arg = flags[flags.index("--checkpoint") + 1]
    elif "--no-download" in flags:  # official: the bare script reads the same file (no hash check)
        weights_arg = str(next(p for p in candidate_paths(MODELS[DEFAULT_MODEL].official) if p.is_file()))
    out_json = ctx.workdir / "cli.json"
    commands = {
        "cli": [sys.executable, "-m", "rpn_viz", str(ctx.image_path), *flags, "--device", "cpu", "--json", str(out_json)],
        "bare": [sys.executable, str(bare), str(ctx.image_path), weights_arg],
        "import": [sys.executable, "-c", "import torch, torchvision"],
        "bad input": [sys.executable, "-m", "rpn_viz", str(ctx.workdir / "no_such_photo.jpg"), *flags],
    }
    results: dict[str, list[Proc]] = {name: [] for name in commands}
    for name, argv in commands.items():  # one untimed run each: file cache, like "after the first install"
        first = run_process(argv)
        if (first.returncode != 0) != (name == "bad input"):
            raise SystemExit(f"benchmark: {name} failed: {first.stderr.strip().splitlines()[-1:]}")
    for _ in range(args.cold_runs):
        for name, argv in commands.items():
            results[name].append(run_process(argv))
    cli_count = len(json.loads(out_json.read_text())["proposals"])
    bare_count = int(results["bare"][-1].stdout.split()[0])
    walls = {name: [p.wall_s for p in procs] for name, procs in results.items()}
    rss = {name: max(p.maxrss_mb for p in procs) for name, procs in results.items()}
    cm, cb = median_min(walls["cli"])
    bm, bb = median_min(walls["bare"])
    im, ib = median_min(walls["import"])
    above = [c - i for c, i in zip(walls["cli"], walls["import"])]  # paired: drift cancels
    am, ab = median_min(above)
    em, eb = median_min(walls["bad input"])
    n = args.cold_runs
    ctx.rows += [
        Row("cold start (CPU)", label, "python -m rpn_viz PHOTO --json (process wall)", cm, cb, unit="s",
            goal=f"< {GOAL_COLD_S:g} s", met=cm < GOAL_COLD_S, runs=n, samples=walls["cli"],
            note=f"{cli_count} proposals"),
        Row("cold start (CPU)", label, "bare torchvision script, same forward", bm, bb, unit="s", runs=n,
            samples=walls["bare"], note=f"{bare_count} proposals"),
        Row("cold start (CPU)", label, "ratio CLI / bare script", cm / bm, cb / bb, unit="×", runs=n),
        Row("cold start (CPU)", "-", "python -c 'import torch, torchvision' alone", im, ib, unit="s", runs=n,
            samples=walls["import"], note="the floor for any torchvision process"),
        Row("cold start (CPU)", label, "CLI above the bare import (paired runs)", am, ab, unit="s",
            goal=f"≤ {GOAL_CLI_ABOVE_IMPORT_S:g} s", met=am <= GOAL_CLI_ABOVE_IMPORT_S, runs=n, samples=above),
        Row("cold start (CPU)", "-", "python -m rpn_viz MISSING.jpg (bad input: no torch import)", em, eb, unit="s",
            runs=n, samples=walls["bad input"], note="exit 2, one line on stderr"),
        Row("peak memory", label, "CLI process (ru_maxrss)", rss["cli"], None, unit="MB", runs=n),
        Row("peak memory", label, "bare torchvision script (ru_maxrss)", rss["bare"], None, unit="MB", runs=n),
        Row("peak memory", "-", "import torch, torchvision (ru_maxrss)", rss["import"], None, unit="MB", runs=n),
    ]


# --------------------------------------------------------------------------------------------------
# CUDA
# --------------------------------------------------------------------------------------------------


def bench_cuda(ctx: Context) -> None:
    if not torch.cuda.is_available():
        ctx.rows.append(Row("GPU", "-", "CUDA", None, None, unit="", note="no CUDA device on this machine: skipped"))
        return
    if ctx.args.models == "all":  # every model already ran on the chosen device
        return
    label, cpu_model, flags = ctx.models[0]
    if "--checkpoint" in flags:
        gpu = load_model(DEFAULT_MODEL, checkpoint=flags[flags.index("--checkpoint") + 1], device="cuda")
    elif "--untrained" in flags:
        gpu = load_model(DEFAULT_MODEL, untrained=True, seed=0, device="cuda")
    else:
        gpu = load_model(DEFAULT_MODEL, allow_download=False, device="cuda")
    name = torch.cuda.get_device_name(0)
    bench_forward(ctx, label, gpu, section=f"GPU: {name}")
    photo = load_image(ctx.image_path)
    model = gpu.model
    images = torchvision_input(gpu, photo.image)
    with torch.inference_mode():
        features = model.backbone(images.tensors)
        feature_list = list(features.values())
        runs = max(ctx.args.runs * 5, 20)
        samples = interleaved(
            {
                "rpn": lambda: model.rpn(images, features),
                "head": lambda: model.rpn.head(feature_list),
                "backbone": lambda: model.backbone(images.tensors),
            },
            runs,
            5,
            torch.cuda.synchronize,
        )
    ctx.rows += [
        Row(f"GPU: {name}", label, "model.rpn alone (head, anchors, decode, NMS)", *median_min(samples["rpn"]),
            goal=f"paper: ~{PAPER_RPN_GPU_MS:g} ms", runs=runs, samples=samples["rpn"]),
        Row(f"GPU: {name}", label, "model.rpn.head alone", *median_min(samples["head"]), runs=runs, samples=samples["head"]),
        Row(f"GPU: {name}", label, "model.backbone (MobileNetV3 + FPN)", *median_min(samples["backbone"]), runs=runs,
            samples=samples["backbone"]),
    ]


# --------------------------------------------------------------------------------------------------
# hooks: rows from other modules (a training step of rpn_viz.training.session)
# --------------------------------------------------------------------------------------------------


def training_step_rows(ctx: Context) -> None:
    """Training steps of an RPN head on cached features (``rpn_viz.training.session.TrainingSession.step``).

    The paper's RPN on ImageNet MobileNetV2, on coffee.jpg (600×400 → 900×600 network input) with
    the cup's box, when the backbone file is on this machine; otherwise the first model's head is
    fine-tuned on the benchmark photo, so the row exists everywhere. Also times one live redraw.
    """
    from rpn_viz.training.session import TrainingSession
    from rpn_viz.model.paper import MOBILENET_V2_IMAGENET, load_paper_model
    from rpn_viz.io.paths import assets_dir

    steps = max(ctx.args.runs, 3)
    if is_available(MOBILENET_V2_IMAGENET):
        label, loaded = "paper RPN (ImageNet MobileNetV2)", load_paper_model(device=ctx.args.device)
        photo, box, note = load_image(assets_dir() / "coffee.jpg"), [172.0, 18.0, 412.0, 305.0], ""
    else:
        label, loaded, _ = ctx.models[0]
        photo = load_image(ctx.image_path)
        w, h = photo.original_size
        box = [0.3 * w, 0.1 * h, 0.7 * w, 0.75 * h]  # one box in the middle of the photo
        note = "; paper-RPN weights absent, so the first model's head is fine-tuned instead"
    session = TrainingSession(loaded, photo, [box])
    for _ in range(2):
        session.step()
    times = [session.step().ms for _ in range(steps)]
    clock = time.perf_counter()
    session.live()
    live_ms = (time.perf_counter() - clock) * 1000.0
    on_cuda = loaded.device.type == "cuda"
    ctx.rows.append(
        Row("training", label, f"TrainingSession.step (head on cached features, {loaded.device})", *median_min(times),
            runs=steps, samples=times, goal=f"≤ {GOAL_TRAIN_STEP_CUDA_MS:g} ms" if on_cuda else "",
            met=statistics.median(times) <= GOAL_TRAIN_STEP_CUDA_MS if on_cuda else None,
            note=f"setup {session.setup_ms:.0f} ms, live view {live_ms:.0f} ms{note}")
    )


def train_command_row(ctx: Context) -> None:
    """``python -m rpn_viz train`` (the shipped head's recipe, its default settings, without --save) as a process
    on the chosen device: feature preparation, the steps, and the process's start, all in its wall time."""
    argv = [sys.executable, "-m", "rpn_viz", "train", "--seed", "0", "--no-download",
            "--device", str(ctx.args.device)]
    done = run_measured(argv, cwd=ROOT, timeout_s=1800)
    last = (done.stdout.strip().splitlines() or ["no output"])[-1]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
    on_cuda = resolve_device(ctx.args.device).type == "cuda"
    ctx.rows.append(
        Row("training", "paper RPN", f"python -m rpn_viz train ({ctx.args.device})", done.wall_s,
            None, unit="s", goal=f"≤ {GOAL_TRAIN_COMMAND_CUDA_S:g} s" if on_cuda else "",
            met=(done.returncode == 0 and done.wall_s <= GOAL_TRAIN_COMMAND_CUDA_S) if on_cuda else None, runs=1,
            note=last[:160])
    )


# Add a function taking a Context and appending Rows; it runs after the built-in measurements.
EXTRA_ROWS: list[Callable[[Context], None]] = [training_step_rows]


# --------------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "tf32": tf32_allowed(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": importlib.import_module("torchvision").__version__,
        "platform": platform.platform(),
        "load_average_at_start": load,
    }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "×":
        return f"{value:.3f}×"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    return f"{value:g}"


def table(rows: list[Row]) -> str:
    header = ["section", "model", "measurement", "median", "best", "goal", "met", "note"]
    cells = [
        [r.section, r.model, r.what, fmt(r.median, r.unit), fmt(r.best, r.unit), r.goal,
         "" if r.met is None else ("yes" if r.met else "NO"), r.note]
        for r in rows
    ]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) for i in range(len(header) - 1)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)) + "  note"]
    lines.append("  ".join("-" * w for w in widths) + "  ----")
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths)) + "  " + c[-1])
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark rpn_viz against plain torchvision.")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="photo (default assets/coffee.jpg)")
    parser.add_argument("--runs", type=int, default=12, help="timed runs per warm measurement (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--cold-runs", type=int, default=2, help="timed process starts per command (default 2)")
    parser.add_argument("--threads", type=int, help="torch threads in this process (default: torch's own)")
    parser.add_argument("--device", default="cpu", help="device of the warm-forward models and the training rows: "
                        "cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--models", choices=("default", "all"), default="default",
                        help="all: the paper's RPN and the four COCO layouts (random checkpoints where the "
                        "official file is absent); default: the default COCO model (or its random checkpoint) "
                        "and the untrained one")
    parser.add_argument("--train-command", action="store_true",
                        help="also time python -m rpn_viz train (the shipped recipe) on --device (minutes on a CPU)")
    parser.add_argument("--no-cold", action="store_true", help="skip the process start-up measurements")
    parser.add_argument("--no-extra", action="store_true", help="skip EXTRA_ROWS (training step)")
    parser.add_argument("--no-app-steps", action="store_true",
                        help="skip the per-step rerun table of the app (bench/app_steps.py, AppTest)")
    parser.add_argument("--no-browser", action="store_true",
                        help="skip the browser latencies (bench/browser_steps.py, Chromium)")
    parser.add_argument("--quick", action="store_true", help="runs=3, cold-runs=1: a smoke test")
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="write every row (with samples) as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.cold_runs, args.warmup = 3, 1, 1
    if args.runs < 1 or args.cold_runs < 1 or args.warmup < 0:
        parser.error("--runs and --cold-runs must be at least 1, --warmup at least 0")
    if not args.image.is_file():
        parser.error(f"{args.image}: no such photo")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="rpn_viz_bench_") as tmp:
        workdir = Path(tmp)
        models = choose_models(args, workdir)
        ctx = Context(args, args.image.resolve(), models, workdir)
        for label, loaded, flags in models:
            t = bench_forward(ctx, label, loaded)
            bench_refilter(ctx, label, t)
        first_input = t.preprocess.input_size
        if not args.no_cold and args.models == "default":  # the bare script loads the default model's file
            label, _, flags = models[0]
            bench_cold(ctx, label, flags)
        bench_cuda(ctx)
        if not args.no_extra:
            for hook in EXTRA_ROWS:
                try:
                    hook(ctx)
                except Exception as exc:  # a hook must not cost the other numbers
                    ctx.rows.append(Row("extra", "-", getattr(hook, "__name__", "hook"), None, None, unit="",
                                        note=f"failed: {type(exc).__name__}: {exc}"[:200]))
        if args.train_command:
            train_command_row(ctx)
    import resource

    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    ctx.rows.append(Row("peak memory", "-", "this benchmark process (ru_maxrss)", own_rss, None, unit="MB"))
    elapsed = time.perf_counter() - started
    photo = load_image(ctx.image_path)
    head = (
        f"rpn_viz benchmark — {_dt.datetime.now().isoformat(timespec='seconds')}\n"
        f"machine: {info['cpu']}, {info['cpu_count']} CPUs, torch threads {info['torch_threads']}, "
        f"CUDA: {info['cuda'] or 'none'}; device {device_name(resolve_device(args.device))}, TF32 {info['tf32']}; "
        f"Python {info['python']}, torch {info['torch']}, "
        f"torchvision {info['torchvision']}; load average at start {info['load_average_at_start']}\n"
        f"photo: {args.image.name} {photo.original_size[0]}×{photo.original_size[1]} → network input "
        f"{first_input[0]}×{first_input[1]}; warm runs {args.runs} (after {args.warmup} warm-up), "
        f"cold runs {args.cold_runs}; total {elapsed:.0f} s"
    )
    print(head)
    load = info["load_average_at_start"]
    if load and info["cpu_count"] and load[0] > 0.5 * info["cpu_count"]:
        print(f"note: the machine was busy when this started (load {load[0]:.1f} on {info['cpu_count']} CPUs): "
              "medians are inflated; the 'best' column is the least disturbed run")
    print()
    print(table(ctx.rows))
    if args.json:
        doc = {
            "machine": info,
            "photo": {"file": str(args.image), "size": list(photo.original_size), "input_size": list(first_input)},
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "models": [{"label": label, "weights": loaded.weights.as_json()} for label, loaded, _ in ctx.models],
            "elapsed_s": elapsed,
            "rows": [asdict(r) for r in ctx.rows],
        }
        args.json.write_text(json.dumps(doc, indent=1))
        print(f"\nwrote {args.json}")
    if not args.no_app_steps:  # the app, server side: every step's rerun (its own table)
        from bench import app_steps

        print()
        app_steps.run(runs=1 if args.quick else 5)
    if not args.no_browser:  # the app in Chromium: step switch and slider release to pictures shown
        from bench import browser_steps

        print()
        browser_steps.main(["--rounds", "1" if args.quick else "3", "--uploads", "1" if args.quick else "3"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
