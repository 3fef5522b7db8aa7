"""rpn_viz: trace a real, trained Region Proposal Network step by step.

    >>> import rpn_viz
    >>> model = rpn_viz.load_model()                      # official COCO weights
    >>> t = rpn_viz.trace(model, "assets/coffee.jpg")
    >>> t.result.boxes[:5], t.result.scores[:5]           # == model.rpn's proposals
    >>> fewer = t.refilter(nms_iou=0.5, post_nms_top_n=50)   # no network re-run

No Streamlit or plotting import happens here: the CLI and notebooks stay light.
"""

from .filtering import FilterResult, FilterSettings
from .images import ImageLoadError, LoadedImage, load_image
from .models import MODELS, LoadedModel, ModelSpec, WeightsInfo, available_models, load_model
from .tracing import LevelTrace, Preprocess, Trace, trace
from .weights import WeightsError

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
