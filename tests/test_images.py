"""Tests for rpn_viz.io.images: every input is generated in tmp_path with Pillow/numpy."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps
from PIL.JpegImagePlugin import JpegImageFile
from PIL.PngImagePlugin import PngImageFile

from rpn_viz.io import adaptations as facts
from rpn_viz.io.errors import ImageLoadError, describe_error
from rpn_viz.io.images import MAX_INPUT_PIXELS, MAX_WORKING_SIDE, SUPPORTED_EXTENSIONS, LoadedImage, load_image

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _save(im: Image.Image, path: Path, fmt: str | None = None, **kw) -> Path:
    im.save(path, format=fmt, **kw)
    return path


def _pixels(result: LoadedImage) -> np.ndarray:
    arr = np.asarray(result.image)
    assert arr.dtype == np.uint8
    return arr


def _assert_rgb(result: LoadedImage) -> None:
    assert isinstance(result, LoadedImage)
    assert result.image.mode == "RGB"
    assert _pixels(result).shape == (result.image.height, result.image.width, 3)


def _close(actual, expected, tol: int = 8) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(actual, expected))


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _png_claiming_size(width: int, height: int) -> bytes:
    """A tiny, well-formed-looking PNG whose IHDR claims width×height.

    The IDAT is the real 8×8 one, so a decoder would run out of data -- which
    is how the tests can tell the size was refused *before* decoding.
    """
    data = bytearray(_png_bytes(Image.new("RGB", (8, 8), (9, 9, 9))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _load_error(source, name: str | None = None) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(source, name=name)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert "Traceback" not in message
    return message


# --------------------------------------------------------------------------
# basic formats and input kinds
# --------------------------------------------------------------------------


def test_constants() -> None:
    assert MAX_INPUT_PIXELS == 40_000_000
    assert MAX_WORKING_SIDE == 2048
    assert SUPPORTED_EXTENSIONS == ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
    assert issubclass(ImageLoadError, ValueError)


@pytest.mark.parametrize(
    ("suffix", "fmt", "kwargs", "expected_format", "tol"),
    [
        ("jpg", "JPEG", {"quality": 95}, "JPEG", 6),
        ("png", "PNG", {}, "PNG", 0),
        ("webp", "WEBP", {"lossless": True}, "WEBP", 0),
        ("webp", "WEBP", {"quality": 90}, "WEBP", 10),
        ("bmp", "BMP", {}, "BMP", 0),
        ("tif", "TIFF", {}, "TIFF", 0),
        ("tiff", "TIFF", {"compression": "tiff_lzw"}, "TIFF", 0),
    ],
)
def test_plain_rgb_formats(tmp_path, suffix, fmt, kwargs, expected_format, tol) -> None:
    im = Image.new("RGB", (48, 32), (200, 40, 90))
    im.paste(BLUE, (0, 0, 16, 16))
    path = _save(im, tmp_path / f"photo.{suffix}", fmt, **kwargs)

    result = load_image(path)

    _assert_rgb(result)
    assert result.image.size == (48, 32)
    assert result.original_size == (48, 32)
    assert result.downscale == 1.0
    assert result.source_format == expected_format
    assert result.source_mode == "RGB"
    assert result.adapted == ()
    px = _pixels(result)
    assert _close(px[4, 4], BLUE, tol)
    assert _close(px[24, 40], (200, 40, 90), tol)


def test_input_kinds_give_the_same_image(tmp_path) -> None:
    im = Image.new("RGB", (20, 10), (10, 20, 30))
    path = _save(im, tmp_path / "kinds.png")
    data = path.read_bytes()

    class UploadedFileLike(io.BytesIO):
        """Mimics streamlit's UploadedFile: a BytesIO with a .name."""

        name = "upload.png"

    already_read = UploadedFileLike(data)
    already_read.read()  # the app may have consumed it; we rewind

    class NonSeekable:
        def __init__(self, payload: bytes) -> None:
            self._buf = io.BytesIO(payload)

        def read(self, n: int = -1) -> bytes:
            return self._buf.read(n)

        def seekable(self) -> bool:
            return False

    sources = [
        str(path),
        path,
        data,
        bytearray(data),
        io.BytesIO(data),
        already_read,
        NonSeekable(data),
    ]
    expected = np.asarray(im)
    for source in sources:
        result = load_image(source)
        assert np.array_equal(_pixels(result), expected), type(source)
        assert result.source_format == "PNG"
    # open file objects are usable too (and are left open for their owner)
    with open(path, "rb") as fh:
        assert load_image(fh).image.size == (20, 10)
        assert not fh.closed


def test_format_sniffed_not_taken_from_extension(tmp_path) -> None:
    path = _save(Image.new("RGB", (5, 7), RED), tmp_path / "actually_png.jpg", "PNG")
    result = load_image(path)
    assert result.source_format == "PNG"
    assert _pixels(result)[0, 0].tolist() == list(RED)


def test_result_is_detached_and_has_no_exif(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(Image.new("RGB", (30, 10), RED), tmp_path / "detach.jpg", exif=exif.tobytes())
    result = load_image(path)
    path.unlink()  # the image must not depend on the file any more
    assert result.image.size == (10, 30)
    assert result.image.info == {}
    # A downstream exif_transpose must not rotate it a second time.
    assert ImageOps.exif_transpose(result.image).size == (10, 30)
    assert result.image.copy().load() is not None


# --------------------------------------------------------------------------
# odd-but-valid modes
# --------------------------------------------------------------------------


def test_grayscale_l(tmp_path) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    path = _save(Image.fromarray(ramp), tmp_path / "gray.png")
    result = load_image(path)
    _assert_rgb(result)
    assert result.source_mode == "L"
    assert result.adapted == (facts.ModeConverted("L"),)
    px = _pixels(result)
    assert np.array_equal(px[..., 0], ramp)
    assert np.array_equal(px[..., 0], px[..., 1]) and np.array_equal(px[..., 1], px[..., 2])


def test_one_bit(tmp_path) -> None:
    im = Image.new("1", (16, 8), 0)
    im.paste(1, (8, 0, 16, 8))
    path = _save(im, tmp_path / "bw.png")
    result = load_image(path)
    _assert_rgb(result)
    assert result.source_mode == "1"
    assert result.adapted == (facts.ModeConverted("1"),)
    px = _pixels(result)
    assert px[0, 0].tolist() == [0, 0, 0]
    assert px[0, 15].tolist() == [255, 255, 255]


def _ramp16() -> np.ndarray:
    return np.arange(65536, dtype=np.uint32).reshape(256, 256).astype(np.uint16)


@pytest.mark.parametrize(
    ("fmt", "suffix", "dtype", "expected_mode"),
    [
        ("PNG", "png", np.uint16, "I;16"),
        ("TIFF", "tif", np.dtype(">u2"), "I;16B"),
        ("TIFF", "tiff", np.int32, "I"),
    ],
)
def test_16bit_ramp_maps_to_full_8bit_range(tmp_path, fmt, suffix, dtype, expected_mode) -> None:
    ramp = _ramp16()
    path = _save(Image.fromarray(ramp.astype(dtype)), tmp_path / f"ramp16.{suffix}", fmt)
    result = load_image(path)

    _assert_rgb(result)
    assert result.source_mode == expected_mode
    assert result.adapted == (facts.BitDepthScaled(16),)
    gray = _pixels(result)[..., 0].astype(int).ravel()
    assert gray.min() == 0 and gray.max() == 255
    assert np.all(np.diff(gray) >= 0)  # monotonic: scaled, not clipped/wrapped
    # Scaled by 255/65535, not clipped at 255: 1000 -> 4, 32768 -> 128.
    assert gray[1000] == 4
    assert gray[32768] == 128
    assert len(np.unique(gray)) == 256


def test_32bit_int_outside_16bit_range_is_stretched(tmp_path) -> None:
    arr = np.array([[-1000, 0, 1000, 3000]], dtype=np.int32)
    path = _save(Image.fromarray(arr), tmp_path / "int32.tif", "TIFF")
    result = load_image(path)
    _assert_rgb(result)
    assert result.source_mode == "I"
    assert result.adapted == (facts.RangeStretched("integer", -1000, 3000),)
    assert _pixels(result)[0, :, 0].tolist() == [0, 64, 128, 255]


def test_float_images(tmp_path) -> None:
    unit = np.linspace(0.0, 1.0, 256, dtype=np.float32).reshape(16, 16)
    r = load_image(_save(Image.fromarray(unit), tmp_path / "unit.tif", "TIFF"))
    _assert_rgb(r)
    assert r.source_mode == "F"
    assert r.adapted == (facts.UnitFloatScaled(),)
    gray = _pixels(r)[..., 0].ravel()
    assert gray.min() == 0 and gray.max() == 255 and np.all(np.diff(gray.astype(int)) >= 0)

    wide = np.array([[-5.0, 0.0, 5.0, np.nan, np.inf]], dtype=np.float32)
    r = load_image(_save(Image.fromarray(wide), tmp_path / "wide.tif", "TIFF"))
    assert r.adapted == (facts.RangeStretched("float", -5.0, 5.0),)
    assert _pixels(r)[0, :, 0].tolist() == [0, 128, 255, 0, 0]

    nothing = np.array([[np.nan, np.inf]], dtype=np.float32)
    r = load_image(_save(Image.fromarray(nothing), tmp_path / "nothing.tif", "TIFF"))
    assert r.adapted == (facts.NoFiniteValues(),)
    assert _pixels(r).max() == 0


def test_rgba_transparent_pixels_become_white(tmp_path) -> None:
    im = Image.new("RGBA", (4, 1))
    im.putpixel((0, 0), (0, 0, 255, 0))  # fully transparent blue
    im.putpixel((1, 0), (255, 0, 0, 255))  # opaque red
    im.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black
    im.putpixel((3, 0), (0, 255, 0, 255))
    result = load_image(_save(im, tmp_path / "alpha.png"))
    _assert_rgb(result)
    assert result.source_mode == "RGBA"
    assert result.adapted == (facts.TransparencyFlattened(),)
    px = _pixels(result)[0]
    assert px[0].tolist() == list(WHITE)
    assert px[1].tolist() == list(RED)
    assert _close(px[2], (127, 127, 127), 1)
    assert px[3].tolist() == list(GREEN)


def test_fully_opaque_rgba_has_no_note(tmp_path) -> None:
    result = load_image(_save(Image.new("RGBA", (3, 3), (1, 2, 3, 255)), tmp_path / "opaque.png"))
    assert result.adapted == ()
    assert _pixels(result)[1, 1].tolist() == [1, 2, 3]


def test_large_transparent_png_is_downscaled_then_flattened(tmp_path) -> None:
    im = Image.new("RGBA", (3000, 1000), (0, 0, 0, 0))
    im.paste((0, 0, 255, 255), (1500, 0, 3000, 1000))
    result = load_image(_save(im, tmp_path / "big_alpha.png"))
    _assert_rgb(result)
    assert result.image.size == (2048, 683)
    assert result.adapted == (facts.TransparencyFlattened(), facts.Downscaled((3000, 1000), (2048, 683)))
    px = _pixels(result)
    assert px[300, 100].tolist() == list(WHITE)
    assert px[300, 2000].tolist() == list(BLUE)


def test_la_grayscale_with_alpha(tmp_path) -> None:
    im = Image.new("LA", (2, 1))
    im.putpixel((0, 0), (0, 0))
    im.putpixel((1, 0), (50, 255))
    result = load_image(_save(im, tmp_path / "la.png"))
    _assert_rgb(result)
    assert result.source_mode == "LA"
    assert result.adapted == (facts.ModeConverted("LA"), facts.TransparencyFlattened())
    assert _pixels(result)[0].tolist() == [list(WHITE), [50, 50, 50]]


def test_palette_with_and_without_transparency(tmp_path) -> None:
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)

    plain = load_image(_save(p, tmp_path / "palette.png"))
    _assert_rgb(plain)
    assert plain.source_mode == "P"
    assert plain.adapted == ()
    assert _pixels(plain)[0].tolist() == [list(RED), list(BLUE)]

    transparent = load_image(_save(p, tmp_path / "palette_t.png", transparency=0))
    assert transparent.source_mode == "P"
    assert _pixels(transparent)[0].tolist() == [list(WHITE), list(BLUE)]

    gif = load_image(_save(p, tmp_path / "palette_t.gif", transparency=0))
    assert gif.source_format == "GIF"
    assert _pixels(gif)[0].tolist() == [list(WHITE), list(BLUE)]


def test_cmyk_jpeg(tmp_path) -> None:
    im = Image.new("CMYK", (32, 32), (0, 255, 255, 0))  # red in CMYK
    im.paste((255, 255, 0, 0), (16, 0, 32, 32))  # blue in CMYK
    result = load_image(_save(im, tmp_path / "cmyk.jpg", quality=95))
    _assert_rgb(result)
    assert result.source_format == "JPEG"
    assert result.source_mode == "CMYK"
    assert result.adapted == (facts.ModeConverted("CMYK"),)
    px = _pixels(result)
    assert _close(px[16, 4], RED, 12)
    assert _close(px[16, 28], BLUE, 12)


def test_lab_tiff(tmp_path) -> None:
    # (138, 209, 198) is sRGB red in Pillow's 8-bit LAB encoding.
    result = load_image(_save(Image.new("LAB", (4, 4), (138, 209, 198)), tmp_path / "lab.tif"))
    assert result.source_mode == "LAB"
    assert result.adapted == (facts.ModeConverted("LAB"),)
    assert _close(_pixels(result)[0, 0], RED, 6)


def test_mpo_is_reported_as_jpeg_first_picture(tmp_path) -> None:
    first = Image.new("RGB", (40, 30), RED)
    path = _save(first, tmp_path / "camera.jpg", "MPO", save_all=True, append_images=[Image.new("RGB", (40, 30), BLUE)])
    with Image.open(path) as check:
        assert check.format == "MPO" and check.n_frames == 2
    result = load_image(path)
    assert result.source_format == "JPEG"
    assert result.adapted == ()  # the extra pictures of an MPO are not content
    assert _close(_pixels(result)[10, 10], RED, 6)


def _three_frames(size=(12, 12)) -> list[Image.Image]:
    return [Image.new("RGB", size, c) for c in (RED, GREEN, BLUE)]


@pytest.mark.parametrize(
    "name, options, fmt",
    [
        ("anim.gif", dict(loop=0), "GIF"),
        ("anim.webp", dict(lossless=True), "WEBP"),
        ("anim.png", {}, "PNG"),
    ],
)
def test_animated_image_uses_first_frame(tmp_path, name, options, fmt) -> None:
    first, *rest = _three_frames()
    path = _save(first, tmp_path / name, save_all=True, append_images=rest, duration=100, **options)
    with Image.open(path) as check:
        assert check.n_frames == 3
    result = load_image(path)
    _assert_rgb(result)
    assert result.source_format == fmt
    assert result.adapted == (facts.FirstFrame(fmt, 3),)
    assert np.all(_pixels(result) == np.array(RED, dtype=np.uint8))


def test_multipage_tiff_uses_first_page(tmp_path) -> None:
    first, *rest = _three_frames()
    path = _save(first, tmp_path / "pages.tif", save_all=True, append_images=rest)
    result = load_image(path)
    assert result.adapted == (facts.FirstFrame("TIFF", 3),)
    assert np.all(_pixels(result) == np.array(RED, dtype=np.uint8))


# --------------------------------------------------------------------------
# EXIF orientation
# --------------------------------------------------------------------------


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def test_exif_orientation_6_rotates_and_moves_the_corner(tmp_path) -> None:
    # Stored 64×32, red block in the stored top-left corner.  Orientation 6
    # means "rotate 90° clockwise to display": the red corner ends top-right.
    im = Image.new("RGB", (64, 32), WHITE)
    im.paste(RED, (0, 0, 16, 16))
    path = _save(im, tmp_path / "rotated.jpg", quality=95, exif=_exif(6))

    result = load_image(path)

    _assert_rgb(result)
    assert result.image.size == (32, 64)
    assert result.original_size == (32, 64)
    assert result.adapted == (facts.ExifRotated(6),)
    px = _pixels(result)
    assert _close(px[4, 32 - 5], RED, 12)  # top-right
    assert _close(px[4, 4], WHITE, 12)  # top-left is now white
    assert _close(px[64 - 5, 32 - 5], WHITE, 12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientations_match_imageops(tmp_path, orientation) -> None:
    rng = np.random.default_rng(orientation)
    arr = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    path = _save(Image.fromarray(arr), tmp_path / f"o{orientation}.png", exif=_exif(orientation))

    result = load_image(path)

    with Image.open(path) as src:
        expected = ImageOps.exif_transpose(src.convert("RGB"))
    assert np.array_equal(_pixels(result), np.asarray(expected))
    expected_size = (5, 7) if orientation >= 5 else (7, 5)
    assert result.original_size == expected_size == result.image.size
    assert result.adapted == (() if orientation == 1 else (facts.ExifRotated(orientation),))


def test_unreadable_exif_is_reported_and_the_photo_still_loads(tmp_path, monkeypatch) -> None:
    path = _save(Image.new("RGB", (7, 5), RED), tmp_path / "broken_exif.jpg", exif=_exif(6))

    def broken(self):
        raise SyntaxError("not a TIFF file")

    monkeypatch.setattr(Image.Image, "getexif", broken)
    result = load_image(path)
    assert result.image.size == (7, 5)  # not rotated: the orientation could not be read
    assert result.adapted == (facts.ExifUnreadable(),)


def test_exif_rotation_combined_with_downscale(tmp_path) -> None:
    im = Image.new("RGB", (4000, 1000), WHITE)
    im.paste(RED, (0, 0, 400, 400))  # stored top-left
    path = _save(im, tmp_path / "wide_rotated.jpg", quality=90, exif=_exif(8))
    result = load_image(path)
    # Orientation 8 = rotate 90° counter-clockwise: stored top-left -> bottom-left.
    assert result.original_size == (1000, 4000)
    assert result.image.size == (512, 2048)
    assert result.downscale == pytest.approx(2048 / 4000)
    assert result.adapted == (facts.ExifRotated(8), facts.Downscaled((1000, 4000), (512, 2048)))
    px = _pixels(result)
    assert _close(px[2048 - 20, 20], RED, 12)
    assert _close(px[20, 20], WHITE, 12)


# --------------------------------------------------------------------------
# sizes
# --------------------------------------------------------------------------


def test_one_by_one(tmp_path) -> None:
    result = load_image(_save(Image.new("RGB", (1, 1), (7, 8, 9)), tmp_path / "dot.png"))
    assert result.image.size == (1, 1)
    assert result.original_size == (1, 1)
    assert result.downscale == 1.0
    assert _pixels(result)[0, 0].tolist() == [7, 8, 9]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((4000, 60), (2048, 31)),
        ((60, 4000), (31, 2048)),
        ((20000, 5), (2048, 1)),
        ((2000, 30), (2000, 30)),
    ],
)
def test_extreme_aspect_ratios(tmp_path, size, expected) -> None:
    im = Image.new("RGB", size, (30, 60, 90))
    result = load_image(_save(im, tmp_path / "strip.png"))
    _assert_rgb(result)
    assert result.original_size == size
    assert result.image.size == expected
    assert max(result.image.size) <= MAX_WORKING_SIDE
    assert result.downscale == pytest.approx(max(expected) / max(size))
    assert _close(_pixels(result)[0, 0], (30, 60, 90), 1)


def test_24_megapixel_jpeg_is_downscaled_with_draft(tmp_path, monkeypatch) -> None:
    im = Image.new("RGB", (6000, 4000), (40, 120, 200))
    im.paste(RED, (0, 0, 600, 400))
    path = _save(im, tmp_path / "big.jpg", quality=85)

    draft_calls: list[tuple] = []
    real_draft = JpegImageFile.draft

    def spy(self, mode, size):
        draft_calls.append((mode, size))
        return real_draft(self, mode, size)

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    result = load_image(path)

    assert draft_calls and draft_calls[0][1] == (2048, 1365)
    _assert_rgb(result)
    assert result.image.size == (2048, 1365)
    assert result.original_size == (6000, 4000)
    assert result.downscale == pytest.approx(2048 / 6000)
    assert result.adapted == (facts.Downscaled((6000, 4000), (2048, 1365)),)
    px = _pixels(result)
    assert _close(px[50, 50], RED, 12)
    assert _close(px[1000, 1500], (40, 120, 200), 12)


def test_large_png_is_downscaled(tmp_path) -> None:
    im = Image.new("RGB", (5000, 2500), GREEN)
    result = load_image(_save(im, tmp_path / "big.png"))
    assert result.image.size == (2048, 1024)
    assert result.original_size == (5000, 2500)
    assert result.downscale == pytest.approx(2048 / 5000)
    assert result.adapted == (facts.Downscaled((5000, 2500), (2048, 1024)),)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


def test_missing_path(tmp_path) -> None:
    message = _load_error(tmp_path / "nope.jpg")
    assert "nope.jpg" in message and "not found" in message


def test_folder(tmp_path) -> None:
    folder = tmp_path / "holiday.jpg"
    folder.mkdir()
    message = _load_error(folder)
    assert "holiday.jpg" in message and "folder" in message


def test_empty_file_and_empty_bytes(tmp_path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    message = _load_error(empty)
    assert "empty.png" in message and "empty (0 bytes)" in message
    message = _load_error(b"", name="upload.png")
    assert message == "upload.png: file is empty (0 bytes)"
    message = _load_error(io.BytesIO(b""), name="stream.png")
    assert "stream.png" in message and "empty" in message


def _jpeg_bytes() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _noisy_png_bytes() -> bytes:
    rng = np.random.default_rng(1)
    return _png_bytes(Image.fromarray(rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)))


def _corrupt_idat_png() -> bytes:
    data = bytearray(_noisy_png_bytes())
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 400] = b"\x00" * 390  # garbage inside the zlib stream
    return bytes(data)


def _ico_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), RED).save(buf, "ICO")
    return buf.getvalue()


ERROR_CASES = [
    ("page.jpg", lambda: b"<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>\n", "looks like HTML"),
    ("notes.png", lambda: b"just some notes\nsecond line\n", "looks like plain text"),
    ("ascii.png", lambda: b"P3\n2 1\n255\n255 0 0 0 0 255\n", "PPM images are not supported"),
    ("logo.png", lambda: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    ("doc.jpg", lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    ("iphone.jpg", lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "HEIC"),
    ("icon.png", _ico_bytes, "ICO images are not supported"),
    ("noise.jpg", lambda: bytes(range(256)) * 8, "not a recognised image"),
    ("half.jpg", lambda: _jpeg_bytes()[: len(_jpeg_bytes()) // 2], "truncated"),
    ("half.png", lambda: _noisy_png_bytes()[: len(_noisy_png_bytes()) // 2], "truncated"),
    ("broken.png", _corrupt_idat_png, "corrupt"),
    ("header_only.png", lambda: b"\x89PNG\r\n\x1a\n" + b"garbage", "corrupt PNG"),
    ("bad.gif", lambda: b"GIF89a\x01", "corrupt GIF"),
    ("bomb.png", lambda: _png_claiming_size(60000, 60000), "too large"),
    ("big_header.png", lambda: _png_claiming_size(8000, 6000), "8000×6000"),
]


@pytest.mark.parametrize(("filename", "make", "expected"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_inputs_give_one_line_errors(tmp_path, filename, make, expected) -> None:
    path = tmp_path / filename
    path.write_bytes(make())
    message = _load_error(path)
    assert filename in message
    assert expected in message
    # Same outcome from bytes with a name (the Streamlit upload path).
    assert _load_error(path.read_bytes(), name=filename) == message.replace(str(path), filename)


def test_bomb_refused_before_decoding(tmp_path, monkeypatch) -> None:
    # 48 MP: above our limit but below Pillow's own, so only our header check
    # can stop it.  If anything tried to decode, load() would be called.
    def no_decode(self):
        raise AssertionError("decoded a refused image")

    monkeypatch.setattr(PngImageFile, "load", no_decode)
    message = _load_error(_png_claiming_size(8000, 6000), name="48mp.png")
    assert message == "48mp.png: image is too large (8000×6000 = 48 megapixels; the limit is 40 megapixels)"


def test_pillow_bomb_warning_is_an_error_and_does_not_leak(tmp_path) -> None:
    # 100 MP triggers Pillow's DecompressionBombWarning (not its error).
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = _load_error(_png_claiming_size(10000, 10000), name="warn.png")
        _load_error(_png_claiming_size(60000, 60000), name="err.png")
        _load_error(_jpeg_bytes()[:3000], name="cut.jpg")
    assert "warn.png" in message and "too large" in message
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    # Pillow's global knobs are untouched.
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_name_argument_is_used_in_messages(tmp_path) -> None:
    path = tmp_path / "on_disk.jpg"
    path.write_bytes(b"hello")
    message = _load_error(path, name="Holiday Photo.jpg")
    assert message.startswith("Holiday Photo.jpg: ")
    assert "on_disk" not in message
    assert _load_error(b"hello").startswith("image data: ")


def test_text_mode_file_object_is_rejected(tmp_path) -> None:
    path = tmp_path / "t.png"
    _save(Image.new("RGB", (2, 2)), path)
    with open(path, encoding="latin-1") as fh:
        message = _load_error(fh)
    assert "t.png" in message and "text mode" in message


def test_wrong_source_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        load_image(42)  # type: ignore[arg-type]


def test_newlines_in_names_do_not_break_the_one_line_rule() -> None:
    message = _load_error(b"plain text here", name="evil\nname.png")
    assert message.startswith("evil name.png: ")


# --------------------------------------------------------------------------
# describe_error
# --------------------------------------------------------------------------


def test_describe_error() -> None:
    err = ImageLoadError("x.png: file not found")
    assert describe_error(err) == "x.png: file not found"
    assert describe_error(ValueError("bad\nthing\n  happened")) == "ValueError: bad thing happened"
    assert describe_error(RuntimeError()) == "RuntimeError"
    assert describe_error(MemoryError()) == "out of memory"
    assert describe_error(KeyError("k")) == "KeyError: 'k'"
    fnf = FileNotFoundError(2, "No such file or directory", "/tmp/a\nb.png")
    assert describe_error(fnf) == "FileNotFoundError: No such file or directory: /tmp/a b.png"
    long = describe_error(ValueError("x" * 5000))
    assert "\n" not in long and len(long) < 400
    # ImageLoadError itself never holds a newline either.
    assert str(ImageLoadError("a\nb")) == "a b"
