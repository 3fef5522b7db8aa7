"""A classroom on one GPU server: the GPU's memory while sessions walk the pipeline and train, and after.

    RPN_VIZ_DEVICE=cuda python bench/gpu_classroom.py              # 30 sessions, 10 of them train
    python bench/gpu_classroom.py --sessions 6 --train 2 --device cpu   # the same flow, a smoke test

The load test's flow (``bench/load_test.py``: a photo, every pipeline step, a slider, a training run)
without a browser: each session is one ``AppTest`` of the app in this process, so every session shares
the server's cached models and traces exactly as browser sessions of one ``streamlit run`` do (the
GPU machine has no Chromium). Sessions cycle through the bundled samples; every third one (up to
``--train``) trains the paper's head for 20 steps on page T1.

Prints one table: the GPU's memory (``torch.cuda``: allocated and reserved, MB) at the start (models
loaded), its peak during the sessions, and at the end after every session is closed, with the goals of
issue 22 (peak < 4 GB; the end within 10 % of the start). On a machine without CUDA it runs the flow on
the CPU and says that there is no GPU memory to report.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_PEAK_MB = 4096.0
GOAL_RETURN = 0.10
PIPELINE = ["input", "features", "anchors", "head", "regression", "before_nms", "nms", "proposals"]
CAT_BOX = [0.0, 0.0, 400.0, 300.0]


def gpu_mb() -> dict[str, float]:
    """The GPU's memory as torch's allocator sees it (MB): allocated now, reserved now, peak allocated."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {}
    mb = 1024.0 * 1024.0
    return {"allocated": torch.cuda.memory_allocated() / mb, "reserved": torch.cuda.memory_reserved() / mb,
            "peak allocated": torch.cuda.max_memory_allocated() / mb, "peak reserved": torch.cuda.max_memory_reserved() / mb}


def session(index: int, train: bool, samples: list[str]) -> float:
    """One student's visit; returns its seconds. Raises on any exception or error the app showed."""
    from ui.apptest import app_test, check

    clock = time.perf_counter()
    sample = samples[index % len(samples)]
    at = app_test("input", sample=sample, timeout=600)
    at.run()
    check(at)
    for step in PIPELINE[1:]:
        at.sidebar.radio(key="step").set_value(step).run()
        check(at)
    at.sidebar.slider(key="nms_iou").set_value(0.5 + 0.05 * (index % 4)).run()
    check(at)
    if train:
        learn = app_test("learn", untrained=True, sample="Chelsea the cat", gt=[CAT_BOX], learn_steps=20,
                         learn_every=10, timeout=600)
        learn.run()
        check(learn)
        learn.button(key="learn_train").click().run()
        check(learn)
        del learn
    del at
    return time.perf_counter() - clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--train", type=int, default=10, help="how many of the sessions also train (T1)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: $RPN_VIZ_DEVICE, else CUDA when present)")
    parser.add_argument("--json", type=Path, metavar="OUT.json")
    args = parser.parse_args(argv)
    if args.device:
        os.environ["RPN_VIZ_DEVICE"] = args.device
    os.environ.setdefault("MPLBACKEND", "Agg")

    import torch

    from rpn_viz.model.device import device_name, resolve_device, tf32_allowed
    from ui.serving import release_free_memory

    device = resolve_device()
    samples = [entry["title"] for entry in json.loads((ROOT / "assets" / "samples.json").read_text())]
    session(0, False, samples)  # models loaded and cached: the server's own start, not a student's cost
    gc.collect()
    release_free_memory()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = gpu_mb()
    trained = 0
    seconds = []
    for index in range(args.sessions):
        train = trained < args.train and index % 3 == 0
        trained += train
        seconds.append(session(index, train, samples))
    during = gpu_mb()
    gc.collect()  # every session's AppTest is gone: what the server still holds for them is a leak
    release_free_memory()
    end = gpu_mb()

    print(f"GPU classroom: {args.sessions} sessions ({trained} trained) on {device_name(device)}, TF32 "
          f"{tf32_allowed()}, torch {torch.__version__}; session wall median {statistics.median(seconds):.1f} s")
    if not start:
        print("no CUDA device in use: the flow ran, there is no GPU memory to report")
        return 0
    rows = [("start (models loaded, caches warm)", start["allocated"], start["reserved"]),
            ("peak during the sessions", during["peak allocated"], during["peak reserved"]),
            ("end (every session closed)", end["allocated"], end["reserved"])]
    print(f"{'moment':38} {'allocated MB':>13} {'reserved MB':>12}")
    for what, allocated, reserved in rows:
        print(f"{what:38} {allocated:13.0f} {reserved:12.0f}")
    peak_ok = during["peak reserved"] < GOAL_PEAK_MB
    back_ok = end["reserved"] <= start["reserved"] * (1 + GOAL_RETURN) + 1.0
    print(f"goal: peak reserved < {GOAL_PEAK_MB:.0f} MB: {'met' if peak_ok else 'NOT met'}; "
          f"end within {GOAL_RETURN:.0%} of start: {'met' if back_ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"device": device_name(device), "start": start, "during": during,
                                         "end": end, "sessions": args.sessions, "trained": trained,
                                         "session_seconds": seconds}, indent=1))
    return 0 if peak_ok and back_ok else 1


if __name__ == "__main__":
    sys.exit(main())
