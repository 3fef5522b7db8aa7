"""Where the photo comes from: a bundled sample, an upload or a webcam snapshot."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

from rpn_viz.io.errors import ImageLoadError, describe_error
from rpn_viz.io.images import SUPPORTED_EXTENSIONS, LoadedImage, load_image
from rpn_viz.io.paths import assets_dir, samples

from .store import MB, shared_store

ASSETS = assets_dir()


@dataclass(frozen=True)
class Photo:
    """The chosen photo, decoded once."""

    name: str
    sha256: str
    image: LoadedImage
    credit: str | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()  # a sample's hand-drawn boxes (photo pixels)

    def to_original(self, boxes: list[list[float]]) -> list[list[float]]:
        """Working-photo pixels (what the box editor keeps) to the original photo's pixels."""
        return [[v / self.image.downscale for v in box] for box in boxes]


PHOTOS = 64  # decoded photos kept by the server (a sample: ~1 MB; a 2048-pixel upload: up to 12 MB)
PHOTO_BYTES = 96 * MB


def _decode(sha: str, name: str, data: bytes) -> LoadedImage:
    return shared_store("photos", PHOTOS, PHOTO_BYTES).get_or_make((sha, name), lambda: load_image(data, name=name))


def decode(name: str, data: bytes, credit: str | None = None, boxes=()) -> Photo:
    """Decode bytes into a :class:`Photo` (cached by content); raises ImageLoadError."""
    sha = hashlib.sha256(data).hexdigest()
    return Photo(name, sha, _decode(sha, name, data), credit, tuple(tuple(map(float, b)) for b in boxes))


def sample_photo(entry: dict) -> Photo:
    """A bundled sample (an entry of assets/samples.json) with its credit and hand-drawn boxes."""
    return decode(entry["file"], (ASSETS / entry["file"]).read_bytes(), entry.get("credit"), entry.get("boxes", ()))


def photo_picker() -> Photo | None:
    """Sidebar widgets for the photo; shows a one-line error (and returns None) for a bad file."""
    source = st.radio("Photo", ["Sample", "Upload", "Webcam"], horizontal=True, key="source", bind="query-params")
    try:
        if source == "Upload":
            upload = st.file_uploader(
                "Your photo", type=list(SUPPORTED_EXTENSIONS), key="upload",
                help="JPEG, PNG, WebP, BMP, GIF or TIFF. Photos are processed in memory and not stored.",
            )
            return decode(upload.name, upload.getvalue()) if upload is not None else None
        if source == "Webcam":
            shot = st.camera_input("Take a snapshot", key="camera")
            return decode("webcam.jpg", shot.getvalue()) if shot is not None else None
        entries = samples()
        titles = [entry["title"] for entry in entries]
        title = st.selectbox("Sample photo", titles, key="sample", bind="query-params")
        entry = entries[titles.index(title)] if title in titles else entries[0]
        return sample_photo(entry)
    except ImageLoadError as exc:
        st.error(str(exc))
    except Exception as exc:  # never let one bad file take the page down
        st.error(describe_error(exc))
    return None
