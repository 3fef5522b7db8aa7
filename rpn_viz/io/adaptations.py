"""What :func:`rpn_viz.io.images.load_image` changed to make a photo the network's input, as facts.

A photo reaches the network as upright 8-bit RGB no larger than ``MAX_WORKING_SIDE``; when the file
was not that already, :attr:`rpn_viz.io.images.LoadedImage.adapted` lists what was done, in the order
it was done: the first frame of an animation taken, the pixel mode converted (bit depth scaled, value
range stretched, transparency flattened onto white), the EXIF orientation applied (or found
unreadable), the photo downscaled. Facts only, numbers included: the sentence a person reads is
made from them where it is shown (``ui.words.photo_note``, the app's Input page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

__all__ = [
    "Adaptation",
    "BitDepthScaled",
    "Downscaled",
    "ExifRotated",
    "ExifUnreadable",
    "FirstFrame",
    "ModeConverted",
    "NoFiniteValues",
    "RangeStretched",
    "TransparencyFlattened",
    "UnitFloatScaled",
]


@dataclass(frozen=True)
class FirstFrame:
    """The file holds ``count`` frames (an animation) or pages (a TIFF); only the first is used."""

    source_format: str  # Pillow's format name: "GIF", "WEBP", "PNG", "TIFF"
    count: int


@dataclass(frozen=True)
class ModeConverted:
    """Pixels of Pillow mode ``mode`` ("1", "L", "LA", "CMYK", "LAB", "YCbCr", ...) converted to RGB as they are."""

    mode: str


@dataclass(frozen=True)
class BitDepthScaled:
    """High-bit-depth grayscale scaled by its bit depth (``bits``: 16, or what a TIFF declares, e.g. 12) to 8 bits."""

    bits: int


@dataclass(frozen=True)
class RangeStretched:
    """A 32-bit ``kind`` image whose values ``low..high`` were stretched onto 0..255."""

    kind: Literal["integer", "float"]
    low: float
    high: float


@dataclass(frozen=True)
class UnitFloatScaled:
    """A 32-bit float image with values in 0..1, taken as intensities (× 255)."""


@dataclass(frozen=True)
class NoFiniteValues:
    """A 32-bit float image without a single finite value: shown black."""


@dataclass(frozen=True)
class TransparencyFlattened:
    """Pixels that were not fully opaque were composited onto white."""


@dataclass(frozen=True)
class ExifRotated:
    """Turned upright by the file's EXIF orientation (2..8: flips and quarter turns)."""

    orientation: int


@dataclass(frozen=True)
class ExifUnreadable:
    """The EXIF block could not be read, so no orientation was applied."""


@dataclass(frozen=True)
class Downscaled:
    """Shrunk from ``original`` to ``working`` (``(width, height)``, as displayed) before the network."""

    original: tuple[int, int]
    working: tuple[int, int]


Adaptation = Union[FirstFrame, ModeConverted, BitDepthScaled, RangeStretched, UnitFloatScaled, NoFiniteValues,
                   TransparencyFlattened, ExifRotated, ExifUnreadable, Downscaled]
