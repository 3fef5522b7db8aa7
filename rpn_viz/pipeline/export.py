"""The JSON/CSV form of a trace: the CLI's output contract, and the app's downloads."""

from __future__ import annotations

import csv
import io
from typing import Any

from .filtering import FilterResult
from .tracing import Trace


def proposals_table(trace: Trace, result: FilterResult | None = None) -> list[dict[str, Any]]:
    """Proposals in rank order: box in original-photo pixels, objectness probability, where it came from."""
    result = result or trace.result
    boxes = trace.to_original(result.boxes)
    rows = []
    for rank, (pos, box, score) in enumerate(zip(result.final_pos.tolist(), boxes.tolist(), result.scores.tolist())):
        level, row, col, anchor = trace.locate(int(result.anchor_index[pos]))
        rows.append(
            {
                "rank": rank,
                "box": [round(v, 3) for v in box],
                "score": score,
                "level": level.name,
                "cell": [row, col],
                "anchor": level.anchor_shapes[anchor].label,
            }
        )
    return rows


def trace_json(trace: Trace, result: FilterResult | None = None) -> dict[str, Any]:
    """The CLI's ``--json`` document (see README, "CLI"); keys are a stable contract."""
    result = result or trace.result
    loaded = trace.model
    return {
        "image_size": list(trace.preprocess.original_size),
        "input_size": list(trace.preprocess.input_size),
        "device": str(loaded.device),
        "model": loaded.name,
        "weights": loaded.weights.as_json(),
        "settings": result.settings.as_json(),
        "levels": [
            {
                "name": level.name,
                "feature_size": list(level.grid),
                "stride": list(level.stride),
                "anchors_per_location": len(level.anchor_shapes),
                "anchor_sizes": sorted({shape.size for shape in level.anchor_shapes}),
                "aspect_ratios": sorted({shape.ratio for shape in level.anchor_shapes}),
                "num_anchors": level.num_anchors,
            }
            for level in trace.levels
        ],
        "counts": result.counts(),
        "proposals": [
            {k: row[k] for k in ("box", "score", "level", "cell", "anchor")} for row in proposals_table(trace, result)
        ],
        "timings_ms": {k: round(v, 3) for k, v in {**trace.timings_ms, **result.timings_ms}.items()},
    }


def proposals_csv(trace: Trace, result: FilterResult | None = None) -> str:
    """Proposals as CSV text: rank, x1, y1, x2, y2 (original pixels), score, level, row, col, anchor."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "x1", "y1", "x2", "y2", "score", "level", "row", "col", "anchor"])
    for row in proposals_table(trace, result):
        writer.writerow([row["rank"], *row["box"], f"{row['score']:.6f}", row["level"], *row["cell"], row["anchor"]])
    return out.getvalue()
