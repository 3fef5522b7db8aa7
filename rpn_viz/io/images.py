"""Robust image loading for the RPN visualiser.

Every image that reaches the network goes through :func:`load_image`.  Its job
is to turn *whatever the user hands us* (a path, raw bytes, a Streamlit
upload) into one predictable thing: an 8-bit RGB :class:`PIL.Image.Image`,
upright (EXIF orientation applied), no larger than :data:`MAX_WORKING_SIDE`
on its longer side -- or to refuse with a single, readable line
(:class:`ImageLoadError`) that names the file and says why.

Design notes
------------
* Nothing here changes Pillow's global settings.  ``Image.MAX_IMAGE_PIXELS``
  and ``ImageFile.LOAD_TRUNCATED_IMAGES`` are left alone; we do our own,
  stricter size check (:data:`MAX_INPUT_PIXELS`) right after ``Image.open``
  has parsed the header and before any pixel is decoded, and we force a full
  decode (``Image.load``) so truncated files fail here, not later inside the
  network.
* Only the formats in :data:`SUPPORTED_EXTENSIONS` are decoded (Pillow's
  ``formats=`` whitelist); anything else gets a message naming what it is.
* High-bit-depth images are scaled by their bit depth (16-bit: 65535 -> 255)
  rather than clipped, which is what a plain ``Image.convert("L")`` does for
  ``I;16`` in Pillow and would turn most 16-bit photos white.
* Transparent pixels are composited onto white, so "nothing" looks like paper
  rather than the arbitrary colour stored under alpha = 0.
* What was adapted is reported as facts (:mod:`rpn_viz.io.adaptations`), not
  sentences: the app words them where it shows them.
* Mode conversion lives in :mod:`rpn_viz.io.pixels`; the messages for inputs that
  are not images, :class:`~rpn_viz.io.errors.ImageLoadError` and
  :func:`~rpn_viz.io.errors.describe_error`, in :mod:`rpn_viz.io.errors`.
* About 400 lines, one module: every input goes through the same pipeline
  (read the source, size-check, decode, convert, downscale, orient), top to
  bottom; splitting it would separate steps that share the input's label and
  the list of what was adapted.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from PIL import Image, ImageFile, UnidentifiedImageError
from PIL.JpegImagePlugin import JpegImageFile

from .adaptations import Adaptation, Downscaled, ExifRotated, ExifUnreadable, FirstFrame
from .errors import ImageLoadError, describe_error, detail, explain_unidentified, too_large_from_pillow
from .pixels import flatten_on_white, to_rgb

__all__ = ["LoadedImage", "MAX_INPUT_PIXELS", "MAX_WORKING_SIDE", "SUPPORTED_EXTENSIONS", "load_image"]

#: Refuse images whose decoded size (width × height, read from the header)
#: exceeds this.  Guards against decompression bombs: a few-KB PNG can claim
#: 60000×60000 pixels and would need ~10 GB once decoded.
MAX_INPUT_PIXELS: int = 40_000_000

#: Images whose longer side exceeds this are downscaled (aspect kept) before
#: they reach the network; detection at this size is as good and much cheaper.
MAX_WORKING_SIDE: int = 2048

#: File extensions the app offers in its file picker (lower case, no dot).
SUPPORTED_EXTENSIONS: tuple[str, ...] = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")

# Pillow format names we are willing to decode.  (The multi-picture JPEGs,
# "MPO", that many phones and cameras write are opened by the JPEG plugin;
# "MPO" itself is not an openable name in Pillow's registry.)
_PIL_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")

# Same table as PIL.ImageOps.exif_transpose.  We apply it ourselves, after
# downscaling, so the (cheap) transpose runs on the small image and a
# malformed EXIF block cannot make an otherwise good photo fail to load.
_ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for the network, plus what we did to get it there.

    Attributes:
        image: 8-bit RGB, EXIF orientation applied, longer side at most
            :data:`MAX_WORKING_SIDE`.  Detached from the source file and with
            its ``info`` (EXIF etc.) cleared, so nothing downstream rotates it
            a second time.
        original_size: ``(width, height)`` as the image is displayed (after
            EXIF rotation) and before any downscale.  Use it to report sizes
            in the user's terms.
        downscale: working size / original size, e.g. ``2048 / 6000``; 1.0
            when the image was small enough.  Divide working-image box
            coordinates by it to get original-image coordinates.
        source_format: Pillow's format name ("JPEG", "PNG", "WEBP", ...);
            MPO (multi-picture JPEG from phones/cameras) is reported as JPEG.
        source_mode: Pillow mode of the file as stored ("RGB", "CMYK",
            "I;16", "P", "RGBA", ...), before any conversion.
        adapted: what was changed to get there, in order (first frame of an
            animation, mode/bit depth/transparency, EXIF rotation, downscale):
            facts from :mod:`rpn_viz.io.adaptations`; empty when the file was
            used as is.
    """

    image: Image.Image
    original_size: tuple[int, int]
    downscale: float
    source_format: str
    source_mode: str
    adapted: tuple[Adaptation, ...]


# --------------------------------------------------------------------------
# public helpers
# --------------------------------------------------------------------------


def load_image(
    source: str | os.PathLike[str] | bytes | BinaryIO,
    name: str | None = None,
) -> LoadedImage:
    """Read ``source`` as an upright 8-bit RGB image, or raise ImageLoadError.

    Args:
        source: a filesystem path (``str`` / ``os.PathLike``), the raw bytes
            of an image file, or a binary file-like object such as Streamlit's
            ``UploadedFile``.  A seekable file-like object is rewound to its
            start first (an upload may already have been read by the app).
        name: what to call the input in messages; defaults to the path, the
            file object's ``name``, or "image data".  Used only in messages.

    Returns:
        A :class:`LoadedImage`.

    Raises:
        ImageLoadError: for every problem with the input (missing, a folder,
            empty, not an image, unsupported format, truncated or corrupt,
            too large).  The message is one line and names the input.
        TypeError: if ``source`` is none of the accepted types (a bug in the
            caller, not a problem with the user's file).
    """
    label, stream = _open_source(source, name)
    try:
        return _decode(stream, label)
    finally:
        stream.close()


# --------------------------------------------------------------------------
# reading the source
# --------------------------------------------------------------------------


def _open_source(
    source: str | os.PathLike[str] | bytes | BinaryIO, name: str | None
) -> tuple[str, BinaryIO]:
    """Return (label for messages, seekable binary stream we own and must close)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "image data"
        data = bytes(source)
        if not data:
            raise ImageLoadError(f"{label}: file is empty (0 bytes)")
        return label, io.BytesIO(data)

    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(os.fspath(source))
        label = name or path
        return label, _open_path(path, label)

    if hasattr(source, "read"):
        label = name or _file_object_name(source) or "uploaded file"
        return label, io.BytesIO(_read_file_object(source, label))

    raise TypeError(
        "load_image() expects a path, bytes or a binary file-like object, "
        f"not {type(source).__name__}"
    )


def _open_path(path: str, label: str) -> BinaryIO:
    """Open a path for reading with messages for the usual ways that fails."""
    if not path:
        raise ImageLoadError("(empty path): no file name given")
    if os.path.isdir(path):
        raise ImageLoadError(f"{label}: is a folder, not an image file")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by load_image
    except FileNotFoundError:
        raise ImageLoadError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(f"{label}: is a folder, not an image file") from None
    except PermissionError:
        raise ImageLoadError(f"{label}: permission denied") from None
    except OSError as exc:
        raise ImageLoadError(f"{label}: cannot open file ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            # A FIFO or device (/dev/zero) would make us read forever.
            raise ImageLoadError(f"{label}: is not a regular file")
        if st.st_size == 0:
            raise ImageLoadError(f"{label}: file is empty (0 bytes)")
    except BaseException:
        fh.close()
        raise
    return fh


def _file_object_name(obj: object) -> str | None:
    """The ``name`` of a file-like object if it has a usable one."""
    value = getattr(obj, "name", None)
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    return value if isinstance(value, str) and value else None


def _read_file_object(obj: BinaryIO, label: str) -> bytes:
    """Read all bytes of a file-like object, from its start when seekable."""
    try:
        seekable = getattr(obj, "seekable", None)
        if seekable is None or seekable():
            try:
                obj.seek(0)
            except (AttributeError, OSError, ValueError):
                pass
        data = obj.read()
    except Exception as exc:  # noqa: BLE001 - reported to the user in one line
        raise ImageLoadError(f"{label}: could not read ({describe_error(exc)})") from exc
    if isinstance(data, str):
        raise ImageLoadError(f"{label}: was opened in text mode; an image must be read as bytes")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageLoadError(f"{label}: reading it did not return bytes")
    if not data:
        raise ImageLoadError(f"{label}: file is empty (0 bytes)")
    return bytes(data)


# --------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------


def _decode(stream: BinaryIO, label: str) -> LoadedImage:
    """Open, size-check, decode, normalise to RGB, downscale and orient."""
    # Pillow warns (DecompressionBombWarning) above Image.MAX_IMAGE_PIXELS and
    # raises above twice that.  Treat the warning as the error it is for us.
    # (catch_warnings only touches the warning filters, never Pillow's limits.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(stream, formats=_PIL_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise too_large_from_pillow(label, exc, MAX_INPUT_PIXELS) from exc
        except UnidentifiedImageError as exc:
            raise ImageLoadError(explain_unidentified(stream, label)) from exc
        except MemoryError as exc:
            raise ImageLoadError(f"{label}: not enough memory to read the image header") from exc
        except Exception as exc:  # noqa: BLE001 - corrupt headers raise all sorts
            raise ImageLoadError(
                f"{label}: corrupt or unreadable image header ({detail(exc)})"
            ) from exc
        try:
            return _process(im, label)
        finally:
            im.close()


def _process(im: ImageFile.ImageFile, label: str) -> LoadedImage:
    """Turn an opened (not yet decoded) image into a LoadedImage; see module doc."""
    fmt = "JPEG" if im.format == "MPO" else (im.format or "unknown")
    source_mode = im.mode
    raw_w, raw_h = im.size

    # 1. Size check on the header, before a single pixel is decoded.
    if raw_w < 1 or raw_h < 1:
        raise ImageLoadError(f"{label}: image has no pixels ({raw_w}×{raw_h})")
    if raw_w * raw_h > MAX_INPUT_PIXELS:
        raise ImageLoadError(
            f"{label}: image is too large ({raw_w}×{raw_h} = {raw_w * raw_h / 1e6:.0f} megapixels; "
            f"the limit is {MAX_INPUT_PIXELS / 1e6:.0f} megapixels)"
        )

    adapted: list[Adaptation] = []

    # 2. Multi-frame files: we use the first frame.  Counting frames only parses
    #    headers; it is done before decoding because it seeks the file.
    first_frame = _first_frame(im, fmt)
    if first_frame is not None:
        adapted.append(first_frame)

    # 3. Working size (in stored orientation; rotation does not change it).
    long_side = max(raw_w, raw_h)
    target: tuple[int, int] | None = None
    if long_side > MAX_WORKING_SIDE:
        scale = MAX_WORKING_SIDE / long_side
        target = (max(1, round(raw_w * scale)), max(1, round(raw_h * scale)))
        if isinstance(im, JpegImageFile):
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale (never below
            # ``target``): a 24 MP photo then costs ~6 MP of memory and time.
            try:
                im.draft(None, target)
            except Exception:  # noqa: BLE001 - draft is only an optimisation
                pass

    # 4. Full decode, so truncated/corrupt data fails here and now.
    try:
        im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise too_large_from_pillow(label, exc, MAX_INPUT_PIXELS) from exc
    except MemoryError as exc:
        raise ImageLoadError(f"{label}: not enough memory to decode the image") from exc
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError, zlib.error...
        reason = detail(exc)
        if "truncated" in reason.lower():
            raise ImageLoadError(f"{label}: {fmt} file is truncated (image data ends early)") from exc
        raise ImageLoadError(f"{label}: {fmt} file is corrupt or unreadable ({reason})") from exc

    orientation, exif_readable = _read_orientation(im)

    # 5. Any mode -> 8-bit RGB (RGBA if it has transparency; flattened below).
    try:
        rgb, converted = to_rgb(im)
    except ImageLoadError:
        raise
    except MemoryError as exc:
        raise ImageLoadError(f"{label}: not enough memory to convert the image") from exc
    except Exception as exc:  # noqa: BLE001
        raise ImageLoadError(
            f"{label}: cannot convert {source_mode} image to RGB ({detail(exc)})"
        ) from exc
    adapted.extend(converted)

    # 6. Downscale (stored orientation), then rotate upright.
    swaps = orientation in (5, 6, 7, 8)
    original_size = (raw_h, raw_w) if swaps else (raw_w, raw_h)
    downscale = 1.0
    if target is not None:
        if rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        downscale = max(target) / long_side
    if orientation in _ORIENTATION_TRANSPOSE:
        rgb = rgb.transpose(_ORIENTATION_TRANSPOSE[orientation])
        adapted.append(ExifRotated(orientation))
    if not exif_readable:
        adapted.append(ExifUnreadable())
    if target is not None:
        adapted.append(Downscaled(original_size, rgb.size))

    if rgb.mode == "RGBA":
        rgb = flatten_on_white(rgb)
    if rgb is im:
        rgb = im.copy()  # detach from the (about to be closed) file object
    rgb.info = {}  # drop EXIF etc.: orientation is already applied
    if rgb.mode != "RGB":  # pragma: no cover - _to_rgb guarantees RGB/RGBA
        rgb = rgb.convert("RGB")

    return LoadedImage(
        image=rgb,
        original_size=original_size,
        downscale=downscale,
        source_format=fmt,
        source_mode=source_mode,
        adapted=tuple(adapted),
    )


def _first_frame(im: ImageFile.ImageFile, fmt: str) -> FirstFrame | None:
    """A :class:`FirstFrame` when a file has several frames/pages and we only use the first."""
    if im.format == "MPO":
        return None  # extra MPO pictures are thumbnails / depth maps, not content
    try:
        n_frames = int(getattr(im, "n_frames", 1))
    except Exception:  # noqa: BLE001 - a broken later frame must not stop frame 0
        n_frames = 1
    finally:
        try:
            if im.tell() != 0:
                im.seek(0)
        except Exception:  # noqa: BLE001 - load() will report a real problem
            pass
    return FirstFrame(fmt, n_frames) if n_frames > 1 else None


def _read_orientation(im: Image.Image) -> tuple[int, bool]:
    """EXIF orientation (1-8) and whether the EXIF block could be read."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - malformed EXIF must not reject a good photo
        return 1, False
    try:
        orientation = int(value)
    except (TypeError, ValueError):
        return 1, True
    return (orientation if 1 <= orientation <= 8 else 1), True
