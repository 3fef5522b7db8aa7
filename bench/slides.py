"""The slide deck (issue 26): how long ``ui.slides.make_deck`` takes with warm caches, and how big it is.

    python bench/slides.py                # table on stdout (~1–2 min on 2 CPU cores)
    python bench/slides.py --runs 5 --json slides.json
    python bench/slides.py --lab          # and each deck with the lab pages too (~6 min)

For each bundled sample photo and each model here — the tests' calibrated random checkpoint
(torchvision's MobileNetV3-FPN architecture, because the COCO weights are not on every machine) and
the paper's RPN trained here — the trace is made once, untimed (the app keeps it in its cache), then
the whole 9-page deck (title page and steps 1–8, following proposal #3) is made ``--runs`` times: the
median and minimum wall time of one deck, its size in MB and its largest picture. Torch gets 2 threads
(the goal is 10 s on 2 cores). The goal is at most 10 s and 12 MB. With ``--lab`` each photo and model
gets a second row: the deck with the lab pages ("Add the lab pages"; the sample's own boxes, as a
session starts with them: L1, L2, L3, L4 and L7, 14 pages), goal about 20 s and 12 MB. Times move with
the machine's load; the sizes do not.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import rpn_viz  # noqa: E402
from rpn_viz.lab.follow import follow  # noqa: E402
from rpn_viz.io.paths import samples  # noqa: E402
from rpn_viz.testing import save_random_checkpoint  # noqa: E402
from ui.scene import Scene  # noqa: E402
from ui.slides import Source, make_deck  # noqa: E402
from rpn_viz.commands.slides import lab_inputs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--photos", default="", help="comma-separated sample files (default: all)")
    parser.add_argument("--json", metavar="OUT.json")
    parser.add_argument("--lab", action="store_true", help="also time each deck with the lab pages")
    args = parser.parse_args()
    torch.set_num_threads(2)
    entries = [e for e in samples() if not args.photos or e["file"] in args.photos.split(",")]
    with tempfile.TemporaryDirectory() as work:
        models = {"random checkpoint (MobileNetV3-FPN)": rpn_viz.load_model(
                      checkpoint=str(save_random_checkpoint(Path(work) / "random.pth", seed=0)), device="cpu"),
                  "paper RPN (trained here)": rpn_viz.load_model("paper_rpn", device="cpu")}
        rows = []
        print(f"{'photo':<14} {'model':<36} {'pages':>5} {'median s':>9} {'min s':>7} {'MB':>6} {'largest picture':>16}")
        for entry in entries:
            for label, loaded in models.items():
                scene = Scene.of(rpn_viz.trace(loaded, ROOT / "assets" / entry["file"]))
                r = scene.result
                found = follow(scene.trace, r, int(r.anchor_index[r.final_pos[min(3, r.final_pos.numel() - 1)]]))
                source = Source(entry["file"], entry["credit"], entry["licence"], "bench", "http://localhost:8501/",
                                entry["title"])
                for lab in [None, lab_inputs(scene.trace, None, entry)][:1 + args.lab]:
                    times, data = [], b""
                    for _ in range(args.runs):
                        fresh = Scene(trace=scene.trace, settings=scene.settings, result=scene.result)  # as a click
                        start = time.perf_counter()
                        data = make_deck(fresh, source, found, lab=lab)
                        times.append(time.perf_counter() - start)
                    import pypdf  # the test extra: only to report the pictures' sizes

                    reader = pypdf.PdfReader(__import__("io").BytesIO(data))
                    largest = max((img.image.size for page in reader.pages[1:] for img in page.images),
                                  key=lambda s: s[0] * s[1])
                    row = {"photo": entry["file"], "model": label, "lab": lab is not None,
                           "median_s": statistics.median(times), "min_s": min(times), "mb": len(data) / 1e6,
                           "pages": len(reader.pages), "largest_picture": list(largest)}
                    rows.append(row)
                    print(f"{row['photo']:<14} {label:<36} {row['pages']:>5} {row['median_s']:>9.2f} {row['min_s']:>7.2f} "
                          f"{row['mb']:>6.1f} {largest[0]:>7}×{largest[1]:<8}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
