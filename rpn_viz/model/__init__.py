"""The networks and their weights: the torchvision Faster R-CNNs, the paper's RPN, weight files.

- ``models``: the registry and :func:`~rpn_viz.model.models.load_model` (official, checkpoint or untrained).
- ``paper``: the Faster R-CNN paper's RPN on ImageNet MobileNetV2 and the head trained here (``rpn_viz/trained/``).
- ``loaded``: what a loaded model is (``LoadedModel``, ``ModelSpec``, ``WeightsInfo``), shared by the two above.
- ``weights``: finding, verifying (sha256) and loading weight files; ``download``: fetching an official one.
- ``device``: which torch device, and moving results to the CPU.

Imports go down to :mod:`rpn_viz.io` only. Inside: ``models`` → ``paper`` → ``loaded``; ``download`` →
``weights``; nothing imports back up.
"""
