"""Projector-friendly look: big type, colour-blind-safe colours (Okabe–Ito), legends everywhere."""

from __future__ import annotations

# Okabe & Ito (2008), distinguishable under the common colour-vision deficiencies.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
CYCLE = [OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky", "yellow", "black")]
KEPT = OKABE_ITO["blue"]
CURRENT = OKABE_ITO["orange"]
SUPPRESSED = OKABE_ITO["vermillion"]
ANCHOR = OKABE_ITO["sky"]
DECODED = OKABE_ITO["orange"]
GROUND_TRUTH = OKABE_ITO["green"]
POSITIVE = OKABE_ITO["blue"]
NEGATIVE = OKABE_ITO["orange"]
HEATMAP = "viridis"  # perceptually uniform and colour-blind safe
SCORES = "cividis"

CSS = """
<style>
html, body, [class*="css"] { font-size: 18px; }
.stMarkdown p, .stMarkdown li { font-size: 1.05rem; line-height: 1.5; }
div[data-testid="stMetricValue"] { font-size: 2rem; }
code { font-size: 0.95em; }
</style>
"""

FOLLOWED = OKABE_ITO["purple"]  # the followed proposal (ui.follow), on every step
