"""Errors written for people, and the one formatter that turns any exception into one line.

The CLI prints ``describe_error(exc)`` on stderr, the app shows it in one ``st.error``: never a
traceback, never a second line. Errors raised *for* users derive from :class:`UserError` and are
shown as they are; anything else becomes ``"TypeName: message"``. The second half writes the
messages of :mod:`rpn_viz.io.images` for inputs that are not (supported) images: it names what the
bytes look like (HEIC, a PDF, a saved web page, ...), so the user knows what to do.

No torch import: the CLI reports bad input with this module before torch is loaded.
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO

from PIL import Image

__all__ = ["ImageLoadError", "OptionError", "UserError", "describe_error", "detail", "one_line"]

_MAX_MESSAGE_CHARS = 300
SUPPORTED_HUMAN = "JPEG, PNG, WebP, BMP, GIF, TIFF"


class UserError(Exception):
    """An error whose message is written for the user: :func:`describe_error` shows it as it is.

    (Whitespace collapsed to one line, no ``TypeName:`` prefix, no length cap: a weights message
    names the file, its URL and the folder to put it in, and must not lose the folder.)
    """


class OptionError(UserError, ValueError):
    """An option or setting the user can fix, e.g. "--steps must be at least 1" or a bad ``RPN_VIZ_DEVICE``.

    Shown as it is, without the ``ValueError:`` prefix of an unexpected failure.
    """


class ImageLoadError(UserError, ValueError):
    """One-line, user-facing reason an input could not be read as an image.

    The message always starts with the file's name (or "image data" for
    anonymous bytes) and never contains a newline, so the CLI can print it and
    the app can show it in a single ``st.error`` without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def describe_error(exc: BaseException) -> str:
    """Turn any exception into a one-line message for the CLI or the app.

    :class:`UserError` messages (e.g. :class:`ImageLoadError`, ``WeightsError``) are returned as
    they are, on one line (they are already written for users).  Anything else becomes
    ``"TypeName: first line"`` so an unexpected failure is still reported in one readable line
    rather than a traceback.
    """
    if isinstance(exc, UserError):
        return " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else None
        text = f"{exc.strerror}: {os.fsdecode(where)}" if where is not None else exc.strerror
        return one_line(f"{type(exc).__name__}: {text}")
    # KeyError's str() is the repr of the key; still useful, keep it.
    text = one_line(str(exc))
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


# --------------------------------------------------------------------------
# why an input is not an image we read
# --------------------------------------------------------------------------

_MAGIC_SUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def explain_unidentified(stream: BinaryIO, label: str) -> str:
    """Why Pillow could not identify the data, as one line naming ``label``."""
    try:
        stream.seek(0)
        head = stream.read(4096)
    except Exception:  # noqa: BLE001
        head = b""

    for magic, fmt in _MAGIC_SUPPORTED:
        if head.startswith(magic):
            return f"{label}: corrupt {fmt} file (its header could not be parsed)"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return f"{label}: corrupt WebP file (its header could not be parsed)"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return f"{label}: HEIC/HEIF images are not supported; convert it to JPEG or PNG"
        if brand in _AVIF_BRANDS:
            return f"{label}: AVIF images are not supported; convert it to JPEG or PNG"
        return f"{label}: is not an image: looks like a video or other media file"
    if head.startswith(b"%PDF"):
        return f"{label}: is not an image: looks like a PDF document"

    # A real image in a format we do not decode (ICO, PPM, PSD, ...)?  Asked
    # before the text check so ASCII formats such as PPM "P3" are named.
    other = _identify_any_format(stream)
    if other is not None:
        return f"{label}: {other} images are not supported (supported: {SUPPORTED_HUMAN})"

    text_kind = _text_kind(head)
    if text_kind is not None:
        return f"{label}: is not an image: looks like {text_kind}"

    if head.startswith(b"BM"):
        return f"{label}: corrupt BMP file (its header could not be parsed)"
    return f"{label}: is not a recognised image file (supported: {SUPPORTED_HUMAN})"


def _text_kind(head: bytes) -> str | None:
    """'HTML', 'SVG', 'XML' or 'plain text' if ``head`` looks like text, else None."""
    if not head:
        return None
    sample = head
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = sample.decode("utf-16", errors="replace")
        except Exception:  # noqa: BLE001
            return None
    else:
        if sample.startswith(b"\xef\xbb\xbf"):
            sample = sample[3:]
        if b"\x00" in sample:
            return None
        text = sample.decode("utf-8", errors="replace")
    if not text:
        return None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n\f")
    if printable / len(text) < 0.95:
        return None
    lower = text.lstrip().lower()
    if lower.startswith(("<!doctype html", "<html")) or any(
        tag in lower for tag in ("<html", "<head>", "<body", "<!doctype html")
    ):
        return "HTML (a saved web page?)"
    if "<svg" in lower:
        return "SVG (vector graphics); export it as PNG"
    if lower.startswith("<?xml"):
        return "XML text"
    return "plain text"


def _identify_any_format(stream: BinaryIO) -> str | None:
    """Name of the format if *any* Pillow plugin recognises it (header only)."""
    try:
        stream.seek(0)
        with Image.open(stream) as other:
            return other.format
    except Exception:  # noqa: BLE001 - purely for a nicer message
        return None


def too_large_from_pillow(label: str, exc: BaseException, limit_pixels: int) -> ImageLoadError:
    """Message for Pillow's own decompression-bomb refusal."""
    match = re.search(r"\((\d+) pixels\)", str(exc))
    claimed = f"{int(match.group(1)) / 1e6:.0f} megapixels" if match else "too many pixels"
    return ImageLoadError(
        f"{label}: image is too large ({claimed}; the limit is "
        f"{limit_pixels / 1e6:.0f} megapixels) - possibly a decompression bomb"
    )


def detail(exc: BaseException) -> str:
    """Short one-line detail of an exception for inclusion in a message."""
    text = one_line(str(exc))
    return text if text else type(exc).__name__


def one_line(text: str) -> str:
    """Collapse whitespace (including newlines) and cap the length."""
    flat = " ".join(str(text).split())
    if len(flat) > _MAX_MESSAGE_CHARS:
        flat = flat[: _MAX_MESSAGE_CHARS - 1].rstrip() + "…"
    return flat

