"""rpn_viz: trace a real, trained Region Proposal Network step by step.

    >>> import rpn_viz
    >>> model = rpn_viz.load_model()                      # official COCO weights
    >>> t = rpn_viz.trace(model, "assets/coffee.jpg")
    >>> t.result.boxes[:5], t.result.scores[:5]           # == model.rpn's proposals
    >>> fewer = t.refilter(nms_iou=0.5, post_nms_top_n=50)   # no network re-run

No Streamlit or plotting import happens here: the CLI and notebooks stay light.

The package in layers, one sub-package each; imports point one way only, from the top down:
commands → lab → training → pipeline → model → io (tests/test_structure.py checks it, imports inside
functions included; no import circle anywhere).

- ``commands``: the ``rpn-viz`` command line, a module per sub-command.
- ``lab``: experiments (custom anchors, anchor fitting, baselines, recall, receptive field, the followed
  anchor, the second stage, the recall table).
- ``training``: training the paper's RPN head (the session, its settings, examples, box-file sets).
- ``pipeline``: one photo through the RPN (the trace, anchors, decoding, post-processing, NMS, export).
- ``model``: the networks and their weight files (torchvision's Faster R-CNNs, the paper's RPN).
- ``io``: photos, box files, paths and one-line error messages.

This module and ``testing`` (tests' and benchmarks' shared helpers) sit above the layers. The layers
return numbers and facts; the Python API's one piece of output is here: :func:`load_model` shows a
download's progress on stderr (the CLI's line, ``rpn_viz.commands.commandline.STDERR_PROGRESS``).
``trained/`` holds the head trained here (:data:`rpn_viz.model.paper.SHIPPED_HEAD`).
"""

from typing import TYPE_CHECKING, Any

# Imported on first use (PEP 562), so ``python -m rpn_viz`` answers a bad command line or a file
# that is not a photo without loading torch.
_HOMES = {
    "FilterResult": "pipeline.filtering", "FilterSettings": "pipeline.filtering",
    "ImageLoadError": "io.errors", "LoadedImage": "io.images", "load_image": "io.images",
    "MODELS": "model.models", "LoadedModel": "model.models", "ModelSpec": "model.models", "WeightsInfo": "model.models",
    "available_models": "model.models",
    "LevelTrace": "pipeline.tracing", "Preprocess": "pipeline.tracing", "Trace": "pipeline.tracing", "trace": "pipeline.tracing",
    "WeightsError": "model.weights",
}

if TYPE_CHECKING:
    from .io.errors import ImageLoadError
    from .pipeline.filtering import FilterResult, FilterSettings
    from .io.images import LoadedImage, load_image
    from .model.models import MODELS, LoadedModel, ModelSpec, WeightsInfo, available_models
    from .pipeline.tracing import LevelTrace, Preprocess, Trace, trace
    from .model.weights import WeightsError


def load_model(*args: Any, **options: Any) -> "LoadedModel":
    """:func:`rpn_viz.model.models.load_model` (same arguments), showing a download's progress on stderr.

    An official weights file that is not on this machine is downloaded with one line on stderr kept up
    to date (``Downloading FILE: 12.3 / 74.2 MB · 5.1 MB/s``); ``progress=None`` shows nothing, a callable
    receives each :class:`rpn_viz.model.download.Progress` instead.
    """
    from .commands.commandline import STDERR_PROGRESS
    from .model.models import load_model as load

    options.setdefault("progress", STDERR_PROGRESS)
    try:
        return load(*args, **options)
    finally:
        STDERR_PROGRESS.end()  # a failed download leaves no half line before the traceback


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rpn_viz' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "FilterResult",
    "FilterSettings",
    "ImageLoadError",
    "LevelTrace",
    "LoadedImage",
    "LoadedModel",
    "MODELS",
    "ModelSpec",
    "Preprocess",
    "Trace",
    "WeightsError",
    "WeightsInfo",
    "available_models",
    "load_image",
    "load_model",
    "trace",
]
