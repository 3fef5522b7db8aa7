"""Any Pillow image mode to 8-bit RGB, without the surprises of a plain ``convert("RGB")``.

Used by :func:`rpn_viz.io.images.load_image` after the full decode. High-bit-depth images are scaled by
their bit depth (16-bit: 65535 → 255) rather than clipped, which is what ``Image.convert("L")`` does
for ``I;16`` and would turn most 16-bit photos white; float images are stretched from their finite
range; transparent pixels are composited onto white (after downscaling, so the full-size white
canvas is never allocated). Each conversion also returns what it did, as facts
(:mod:`rpn_viz.io.adaptations`; none when the pixels were used as they are).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .adaptations import (
    Adaptation,
    BitDepthScaled,
    ModeConverted,
    NoFiniteValues,
    RangeStretched,
    TransparencyFlattened,
    UnitFloatScaled,
)

__all__ = ["flatten_on_white", "to_rgb"]

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_HIGH_BIT_INT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def to_rgb(im: Image.Image) -> tuple[Image.Image, tuple[Adaptation, ...]]:
    """Convert any supported mode to 8-bit RGB; return (image, what was done: empty for RGB and plain palettes).

    The returned image may be ``im`` itself when it already is RGB, and is
    "RGBA" when it has pixels that are not fully opaque; the caller flattens
    that onto white with :func:`flatten_on_white` (after downscaling).
    """
    mode = im.mode
    if mode == "RGB":
        return im, ()
    if mode in _HIGH_BIT_INT_MODES:
        gray, done = _high_bit_int_to_l(im)
        return gray.convert("RGB"), (done,)
    if mode == "F":
        gray, done = _float_to_l(im)
        return gray.convert("RGB"), (done,)
    if mode == "1":
        return im.convert("RGB"), (ModeConverted(mode),)

    has_alpha = mode in _ALPHA_MODES or "transparency" in im.info
    if has_alpha:
        gray = mode in ("L", "LA", "La")
        rgba = im.convert("RGBA")
        alpha_min = rgba.getchannel("A").getextrema()[0]
        if alpha_min < 255:
            # Stay RGBA: _process downscales first (Pillow resizes RGBA with
            # premultiplied alpha) and then flattens onto white, so the
            # full-size white canvas is never allocated.
            rgb: Image.Image = rgba
            flattened: tuple[Adaptation, ...] = (TransparencyFlattened(),)
        else:
            rgb, flattened = rgba.convert("RGB"), ()
        return rgb, ((ModeConverted(mode),) if gray else ()) + flattened

    if mode == "P":
        return im.convert("RGB"), ()
    # L, CMYK, YCbCr, HSV, RGBX, ...; unsupported ones (e.g. LAB) raise ValueError,
    # which _process reports as "cannot convert <mode> image to RGB".
    return im.convert("RGB"), (ModeConverted(mode),)


def flatten_on_white(rgba: Image.Image) -> Image.Image:
    """Composite an RGBA image onto opaque white and return it as RGB."""
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _high_bit_int_to_l(im: Image.Image) -> tuple[Image.Image, BitDepthScaled | RangeStretched]:
    """16/32-bit integer grayscale -> 8-bit "L", scaled by the bit depth.

    ``I;16*`` data is scaled by its declared bit depth (16, or what a TIFF's
    BitsPerSample says, e.g. 12), so 0..65535 maps onto 0..255 -- unlike
    Pillow's ``convert("L")``, which clips everything above 255 to white.
    Mode ``I`` (32-bit) is treated as 16-bit data when its values fit in
    0..65535 (that is how 16-bit files usually end up in it), otherwise its
    actual value range is stretched to 0..255.
    """
    arr = np.asarray(im)
    lo = int(arr.min())
    hi = int(arr.max())
    declared = _declared_bits(im)
    bits: int | None = None
    if declared is not None and 1 <= declared <= 16 and lo >= 0 and hi <= (1 << declared) - 1:
        bits = declared
    elif im.mode != "I" or (lo >= 0 and hi <= 0xFFFF):
        bits = 16
    if bits is not None:
        scaled = arr.astype(np.float32) * np.float32(255.0 / ((1 << bits) - 1))
        done: BitDepthScaled | RangeStretched = BitDepthScaled(bits)
    else:
        span = float(hi - lo) or 1.0
        scaled = (arr.astype(np.float64) - lo) * (255.0 / span)
        done = RangeStretched("integer", lo, hi)
    out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(out), done


def _float_to_l(im: Image.Image) -> tuple[Image.Image, NoFiniteValues | UnitFloatScaled | RangeStretched]:
    """32-bit float grayscale -> 8-bit "L".

    Values already in 0..1 are treated as intensities (x255); anything else
    is stretched from its finite min..max.  NaN and infinities become black.
    """
    arr = np.asarray(im, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.any():
        out = np.zeros(arr.shape, dtype=np.uint8)
        return Image.fromarray(out), NoFiniteValues()
    lo = float(arr[finite].min())
    hi = float(arr[finite].max())
    if lo >= 0.0 and hi <= 1.0:
        scaled = arr * np.float32(255.0)
        done: UnitFloatScaled | RangeStretched = UnitFloatScaled()
    else:
        span = (hi - lo) or 1.0
        scaled = (arr - np.float32(lo)) * np.float32(255.0 / span)
        done = RangeStretched("float", lo, hi)
    scaled = np.where(finite, scaled, 0.0)
    out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(out), done


def _declared_bits(im: Image.Image) -> int | None:
    """Bits per sample declared by the file, where Pillow exposes it (TIFF)."""
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return None
    try:
        value = tags.get(258)  # BitsPerSample
        if isinstance(value, (tuple, list)):
            value = value[0] if value else None
        return int(value) if value is not None else None
    except Exception:  # noqa: BLE001
        return None


