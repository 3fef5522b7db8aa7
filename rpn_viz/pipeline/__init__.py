"""One photo through the RPN, stage by stage: the trace and the arithmetic of each stage.

- ``tracing``: one forward pass of a model's first stage keeping every intermediate (:func:`trace`).
- ``anchors``: anchor geometry (shapes, tiling, inside the image, the paper's labels and mini-batch).
- ``regression``: decoding one anchor's deltas into a box, with every intermediate number.
- ``filtering``: torchvision's post-processing (top-N, clip, small boxes, score, NMS) one recorded stage at a time.
- ``nms``: greedy NMS replayed one step at a time, to show it.
- ``boxes``: boxes typed by a person, and how well a set of boxes covers them (IoU).
- ``export``: a trace as JSON/CSV (the CLI's output, the app's downloads).

Imports go down to :mod:`rpn_viz.model` and :mod:`rpn_viz.io` only.
"""
