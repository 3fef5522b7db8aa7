"""Per-step rerun times of the app, server side (Streamlit's AppTest), with models and traces cached.

    python bench/app_steps.py                 # table on stdout (~3–6 min on 2 CPU cores)
    python bench/app_steps.py --runs 3 --steps input,nms
    python bench/app_steps.py --json steps.json

For every step of ``ui.steps.STEPS``, in one AppTest session on the first sample photo, with the
network's trace already cached (the first untimed run makes it):

* **first visit**: switch to the step with every rendered picture forgotten (``st.cache_data``
  cleared; models and traces stay cached), i.e. what a student pays the first time;
* **rerun**: the same page again, nothing changed (what any widget elsewhere costs);
* **step switch**: away to step 1 and back (both warm);
* **sidebar slider**: the NMS IoU slider moved to a value not seen before (re-filter + redraw);
* **page widget**: the step's own slider / number / choice moved to a new value (on the Anchors
  step the cell row, which is what a click on the picture sets; on the NMS step the step slider moved
  by one, which is what Play draws for each frame).

Each row is the median (and minimum) of ``--runs`` timed ``AppTest.run()`` calls (script time plus
AppTest's own bookkeeping, no browser). Models: a checkpoint made here with torchvision's
architecture and seeded random-normal weights (``RPN_VIZ_CHECKPOINT``; scores vary as a trained
model's do), because the COCO weights are not on every machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_WARM_S = 0.3
GOAL_FIRST_S = 1.0
# boxes on the first sample photo (wine.jpg, photo pixels) for the pages that need ground truth
GT = [[60.0, 300.0, 330.0, 900.0], [380.0, 120.0, 640.0, 520.0]]


@dataclass
class StepRow:
    step: str
    title: str
    times: dict[str, list[float]] = field(default_factory=dict)

    def median(self, what: str) -> float | None:
        values = self.times.get(what)
        return statistics.median(values) if values else None

    def best(self, what: str) -> float | None:
        values = self.times.get(what)
        return min(values) if values else None


def _cycle(values: list, start: int = 0) -> Callable[[int], object]:
    return lambda i: values[(start + i) % len(values)]


# The step's own widget: (kind, key, value for run i). Values differ run to run: every move is new.
PAGE_WIDGETS: dict[str, tuple[str, str, Callable[[int], object]]] = {
    "features": ("slider", "feat_channel", _cycle([3, 7, 11, 15, 19, 23, 27, 31], 0)),
    "anchors": ("number_input", "anchor_row", _cycle([10, 12, 14, 16, 18, 20, 22, 24])),
    "head": ("selectbox", "head_anchor", None),  # options read from the page
    "regression": ("slider", "reg_many", _cycle([10, 15, 20, 30, 35, 40, 45, 50])),
    "before_nms": ("slider", "before_drawn", _cycle([100, 120, 140, 160, 180, 200, 220, 240])),
    "nms": ("slider", "nms_at", _cycle([2, 3, 4, 5, 6, 7, 8, 9])),
    "proposals": ("slider", "prop_drawn", _cycle([6, 8, 10, 12, 14, 16, 18, 25])),
    "lab_anchors": ("number_input", "lab_seed", _cycle([1, 2, 3, 4, 5, 6, 7, 8])),
    "lab_custom": ("slider", "lab_custom_shown", _cycle([2, 3, 4, 5, 6, 7, 8, 9])),
    "lab_recall": ("select_slider", "lab_recall_iou", _cycle([0.6, 0.7, 0.8, 0.55, 0.65, 0.75, 0.85, 0.9])),
    "lab_before": ("select_slider", "lab_before_stride", _cycle([8, 32, 8, 32, 8, 32, 8, 32])),
    "lab_untrained": ("select_slider", "lab_untrained_top", _cycle([5, 10, 50, 100, 5, 10, 50, 100])),
    "lab_receptive": ("slider", "lab_receptive_mass", _cycle([0.9, 0.8, 0.7, 0.6, 0.85, 0.75, 0.65, 0.55])),
    "learn": ("slider", "learn_steps", _cycle([20, 30, 40, 50, 60, 70, 80, 90])),
}
# the state a step needs before it shows its pictures
SETUP: dict[str, dict[str, object]] = {
    "features": {"feat_mode": "One channel"},
}
NMS_IOUS = [0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.75, 0.8, 0.85, 0.9, 0.35, 0.3]


def make_checkpoint(workdir: Path) -> Path:
    """The tests' and benchmarks' one random checkpoint (``rpn_viz.testing``), saved in ``workdir``."""
    from rpn_viz.testing import save_random_checkpoint

    return save_random_checkpoint(workdir / "random_mobilenet.pth")


def _widget(at, kind: str, key: str):
    return getattr(at, kind)(key=key)


def _timed(at, _widget_set=None) -> float:
    """Time one ``at.run()`` (a widget's ``set_value`` before it only records the new value)."""
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise RuntimeError(f"exception on the page: {[e.message for e in at.exception]}")
    return elapsed


def measure(steps: list[str], runs: int) -> list[StepRow]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from rpn_viz.io.images import load_image  # noqa: F401  (import cost outside the timings)
    from ui.photo import samples
    import hashlib

    from ui.steps import step_by_key

    first = samples()[0]["file"]
    sha = hashlib.sha256((ROOT / "assets" / first).read_bytes()).hexdigest()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.session_state["step"] = "input"
    at.session_state["gt_boxes"] = {sha: [list(b) for b in GT]}
    at.run()  # loads the model and traces the photo (untimed)
    if at.exception:
        raise RuntimeError([e.message for e in at.exception])
    rows = []
    nms_round = 0
    for key in steps:
        step = step_by_key(key)
        row = StepRow(key, step.title)
        rows.append(row)
        for state_key, value in SETUP.get(key, {}).items():
            at.session_state[state_key] = value
        if key == "lab_receptive":  # compute one receptive field (a backward pass), untimed
            at.radio(key="step").set_value(key).run()
            at.button(key="lab_receptive_run").click().run()
        for i in range(runs):
            at.radio(key="step").set_value("input").run()
            st.cache_data.clear()  # rendered pictures forgotten; models and traces stay
            row.times.setdefault("first visit", []).append(_timed(at, at.radio(key="step").set_value(key)))
            row.times.setdefault("rerun", []).append(_timed(at))
            at.radio(key="step").set_value("input").run()
            row.times.setdefault("step switch", []).append(_timed(at, at.radio(key="step").set_value(key)))
            value = NMS_IOUS[nms_round % len(NMS_IOUS)]
            nms_round += 1
            row.times.setdefault("sidebar slider", []).append(_timed(at, at.slider(key="nms_iou").set_value(value)))
            widget = PAGE_WIDGETS.get(key)
            if widget is not None:
                kind, wkey, values = widget
                try:
                    element = _widget(at, kind, wkey)
                except KeyError:
                    element = None
                if element is not None:
                    if values is None:
                        options = list(element.options)
                        new = options[(i + 1) % len(options)]
                    else:
                        new = values(i)
                    row.times.setdefault("page widget", []).append(_timed(at, element.set_value(new)))
        at.slider(key="nms_iou").set_value(0.7).run()
        print(f"  {step.title}: " + ", ".join(f"{k} {row.median(k):.2f} s" for k in row.times), flush=True)
    return rows


COLUMNS = ["first visit", "rerun", "step switch", "sidebar slider", "page widget"]


def table(rows: list[StepRow]) -> str:
    def cell(row: StepRow, what: str) -> str:
        m = row.median(what)
        if m is None:
            return "—"
        goal = GOAL_FIRST_S if what == "first visit" else GOAL_WARM_S
        return f"{m:.2f}{'' if m <= goal else ' ✘'}"

    header = ["step", *COLUMNS, "worst warm"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        warm = [row.median(w) for w in COLUMNS[1:] if row.median(w) is not None]
        lines.append("| " + " | ".join([row.title, *(cell(row, c) for c in COLUMNS), f"{max(warm):.2f}"]) + " |")
    return "\n".join(lines)


def run(steps: list[str] | None = None, runs: int = 5, json_path: Path | None = None) -> list[StepRow]:
    """Make the checkpoint, point the app at it, measure, print the table (and write JSON)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="rpn_viz_steps_") as tmp:
        os.environ["RPN_VIZ_CHECKPOINT"] = str(make_checkpoint(Path(tmp)))
        from ui.steps import STEPS

        keys = steps or [step.key for step in STEPS]
        started = time.perf_counter()
        rows = measure(keys, runs)
        elapsed = time.perf_counter() - started
    load = os.getloadavg()
    print(f"\nPer-step rerun times, seconds, median of {runs} (AppTest, server side; goal: warm ≤ {GOAL_WARM_S} s, "
          f"first visit ≤ {GOAL_FIRST_S} s; ✘ = over). Load average at the end {load[0]:.1f}; {elapsed:.0f} s.")
    print(table(rows))
    if json_path is not None:
        json_path.write_text(json.dumps([asdict(r) for r in rows], indent=1))
        print(f"wrote {json_path}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per cell (default 5)")
    parser.add_argument("--steps", help="comma-separated step keys (default: every step)")
    parser.add_argument("--json", type=Path, metavar="OUT.json")
    args = parser.parse_args(argv)
    run(args.steps.split(",") if args.steps else None, args.runs, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
