"""Experiments around the RPN: what the app's lab pages and the recall table compute.

- ``custom_anchors``: a trained head's deltas decoded against anchors the user chose.
- ``anchor_fit``, ``shape_kmeans``: which boxes the anchors miss; anchor shapes fitted to a box set.
- ``baselines``: Selective Search and sliding windows, what the RPN is compared with.
- ``recall``: proposal recall on ground-truth boxes, as in the paper's figures.
- ``receptive``: the effective receptive field of a feature-map cell (gradients).
- ``follow``: the life of one anchor through every recorded stage of a trace.
- ``detect``: the second stage (Faster R-CNN's ``roi_heads``) on the RPN's proposals.
- ``evaluate``: the recall table of the shipped head against the baselines (``rpn-viz evaluate``).

Imports go down to :mod:`rpn_viz.training` (evaluate reads the bundled set through
``training.dataset``), :mod:`rpn_viz.pipeline`, :mod:`rpn_viz.model` and :mod:`rpn_viz.io`.
"""
