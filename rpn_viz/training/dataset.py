"""A small detection set on disk: photos and their ground-truth boxes, checked before any training.

The format is one JSON file beside the photos (``assets/dataset/boxes.json`` is the bundled one)::

    {"format": "rpn_viz boxes v1",
     "images": [{"file": "x.jpg", "split": "train", "width": 640, "height": 427,
                 "boxes": [[x1, y1, x2, y2], ...], "labels": ["cup", ...],
                 "licence": "CC0", "credit": "..."}]}

Boxes are in the photo's own pixels (x right, y down). ``split`` is ``"train"`` or ``"val"``.
Everything a training run needs is checked up front — the file's shape, every photo (it must open as
an image of the stated size), every box (four finite numbers inside the photo, ``x1 < x2``,
``y1 < y2``) — and the first problem is raised as a :class:`DatasetError` whose message is one line
naming the file, the photo and the box. A broken photo never surfaces as a traceback halfway through
training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch
from torch import Tensor

from ..io.box_files import BUNDLED_FORMAT as FORMAT
from ..io.box_files import BUNDLED_PATH as BUNDLED
from ..io.box_files import BoxFileError, ImageBoxes, decode_json, parse_bundled
from ..io.errors import ImageLoadError
from ..io.images import LoadedImage, load_image

__all__ = ["BUNDLED", "FORMAT", "AnnotatedPhoto", "DatasetError", "box_count", "load_photos", "read_box_file", "select"]

Split = Literal["train", "val"]


class DatasetError(BoxFileError):
    """A box file or one of its photos cannot be used for training; one line naming the culprit."""


@dataclass(frozen=True)
class AnnotatedPhoto:
    """One photo of a box file, with its boxes (photo pixels) and where it came from."""

    path: Path
    split: Split
    size: tuple[int, int]  # (width, height) as stated in the file and checked on load
    boxes: tuple[tuple[float, float, float, float], ...]
    labels: tuple[str, ...]
    licence: str = ""
    credit: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    def box_tensor(self) -> Tensor:
        """The boxes as an (n, 4) float32 tensor."""
        return torch.tensor(self.boxes, dtype=torch.float32).reshape(-1, 4)

    def load(self) -> LoadedImage:
        """The decoded photo; :class:`DatasetError` if it is broken or not the stated size."""
        try:
            image = load_image(self.path)
        except ImageLoadError as exc:
            raise DatasetError(f"{self.name}: {exc}") from None
        if tuple(image.original_size) != self.size:
            raise DatasetError(
                f"{self.name}: the photo is {image.original_size[0]}×{image.original_size[1]}, "
                f"but the box file says {self.size[0]}×{self.size[1]}"
            )
        return image


def _for_training(folder: Path, source: str, raw: dict, parsed: ImageBoxes) -> AnnotatedPhoto:
    """What training needs beyond :func:`rpn_viz.io.box_files.parse_bundled`'s checks: the photo is a
    file beside the box file, its size is stated, its split is train or val, it has boxes."""
    name = raw.get("file")
    where = f"{source}: {parsed.file}"
    if name != parsed.file:
        raise DatasetError(f"{source}: 'file' must be a plain file name in the box file's folder, got {name!r}")
    path = folder / parsed.file
    if not path.is_file():
        raise DatasetError(f"{where}: no such photo in {folder}")
    split = raw.get("split", "train")
    if split not in ("train", "val"):
        raise DatasetError(f"{where}: 'split' must be 'train' or 'val', got {split!r}")
    if parsed.size is None:
        raise DatasetError(f"{where}: needs the photo's 'width' and 'height'")
    if not parsed.boxes:
        raise DatasetError(f"{where}: needs at least one box")
    return AnnotatedPhoto(path, split, parsed.size, parsed.boxes, parsed.labels,
                          str(raw.get("licence", "")), str(raw.get("credit", "")))


def read_box_file(path: str | Path = BUNDLED) -> list[AnnotatedPhoto]:
    """Every entry of a box file (a ``boxes.json``, or the folder holding one), checked for training.

    The format and every box are checked by :func:`rpn_viz.io.box_files.parse_bundled` (the anchor lab
    reads the same files); photos are only looked up here, :func:`load_photos` decodes them.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "boxes.json"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such box file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({type(exc).__name__})") from None
    doc = decode_json(data, path.name)  # parsed once: the checks and the training keys read the same document
    parsed = parse_bundled(doc, path.name)
    raws = doc["images"]
    entries = [_for_training(path.parent, path.name, raw, p) for raw, p in zip(raws, parsed)]
    if not entries:
        raise DatasetError(f"{path}: 'images' is empty")
    names = [e.name for e in entries]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise DatasetError(f"{path}: photo {duplicate} is listed twice")
    return entries


def select(entries: Sequence[AnnotatedPhoto], split: Split | None) -> list[AnnotatedPhoto]:
    """The entries of one split (all of them for ``None``)."""
    return [e for e in entries if split is None or e.split == split]


def load_photos(entries: Sequence[AnnotatedPhoto]) -> list[tuple[AnnotatedPhoto, LoadedImage]]:
    """Decode every photo first, so a broken one stops the run before any training starts."""
    return [(entry, entry.load()) for entry in entries]


def box_count(entries: Sequence[AnnotatedPhoto]) -> int:
    """Total number of boxes."""
    return sum(len(e.boxes) for e in entries)
