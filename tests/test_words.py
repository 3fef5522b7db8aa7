"""The app's note on what was changed in a photo before the network (``ui.words.photo_note``), made from
``load_image``'s facts (tests/test_images.py checks the facts on generated files): each fact's words,
their order, and the note of real files end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rpn_viz.io import adaptations as facts
from rpn_viz.io.images import load_image
from ui.words import adaptation_text, photo_note


@pytest.mark.parametrize(
    "fact, words",
    [
        (facts.FirstFrame("GIF", 3), "animated GIF: first of 3 frames"),
        (facts.FirstFrame("WEBP", 3), "animated WebP: first of 3 frames"),
        (facts.FirstFrame("PNG", 4), "animated PNG: first of 4 frames"),
        (facts.FirstFrame("TIFF", 3), "multi-page TIFF: first of 3 pages"),
        (facts.ModeConverted("1"), "1-bit black-and-white image converted to RGB"),
        (facts.ModeConverted("L"), "grayscale image converted to RGB"),
        (facts.ModeConverted("LA"), "grayscale image converted to RGB"),
        (facts.ModeConverted("CMYK"), "CMYK image converted to RGB"),
        (facts.ModeConverted("LAB"), "LAB image converted to RGB"),
        (facts.BitDepthScaled(16), "16-bit grayscale converted to 8-bit RGB"),
        (facts.BitDepthScaled(12), "12-bit grayscale converted to 8-bit RGB"),
        (facts.RangeStretched("integer", -1000, 3000), "32-bit integer image rescaled from its value range -1000..3000 to 8-bit RGB"),
        (facts.RangeStretched("float", -5.0, 5.0), "32-bit float image rescaled from its value range -5..5 to 8-bit RGB"),
        (facts.RangeStretched("float", 0.25, 1.5), "32-bit float image rescaled from its value range 0.25..1.5 to 8-bit RGB"),
        (facts.UnitFloatScaled(), "32-bit float image (0..1) converted to 8-bit RGB"),
        (facts.NoFiniteValues(), "32-bit float image has no finite values; shown black"),
        (facts.TransparencyFlattened(), "transparent areas filled with white"),
        (facts.ExifRotated(6), "rotated upright using the EXIF orientation"),
        (facts.ExifUnreadable(), "EXIF data unreadable; orientation not applied"),
        (facts.Downscaled((6000, 4000), (2048, 1365)), "downscaled from 6000×4000 to 2048×1365"),
    ],
)
def test_each_fact_in_words(fact, words) -> None:
    assert adaptation_text(fact) == words
    assert photo_note([fact]) == words


def test_a_photo_used_as_is_has_no_note() -> None:
    assert photo_note(()) is None


def test_the_note_of_real_files_keeps_the_order_things_were_done(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    wide = tmp_path / "wide_rotated.jpg"
    Image.new("L", (4000, 1000), 90).save(wide, quality=90, exif=exif.tobytes())
    assert photo_note(load_image(wide).adapted) == (
        "grayscale image converted to RGB; rotated upright using the EXIF orientation; "
        "downscaled from 1000×4000 to 512×2048"
    )

    glass = tmp_path / "glass.png"
    Image.new("LA", (3000, 1000), (50, 0)).save(glass)
    assert photo_note(load_image(glass).adapted) == (
        "grayscale image converted to RGB; transparent areas filled with white; downscaled from 3000×1000 to 2048×683"
    )

    frames = tmp_path / "anim.gif"
    first, *rest = (Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255)))
    first.save(frames, save_all=True, append_images=rest, duration=100, loop=0)
    assert photo_note(load_image(frames).adapted) == "animated GIF: first of 3 frames"

    ramp = tmp_path / "ramp16.png"
    Image.fromarray(np.arange(65536, dtype=np.uint32).reshape(256, 256).astype(np.uint16)).save(ramp)
    assert photo_note(load_image(ramp).adapted) == "16-bit grayscale converted to 8-bit RGB"
