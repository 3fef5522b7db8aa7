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

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch
from torch import Tensor

from .images import ImageLoadError, LoadedImage, load_image

FORMAT = "rpn_viz boxes v1"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
#: The bundled, openly licensed training set (see ``assets/dataset/LICENSES.md``).
BUNDLED = ASSETS / "dataset" / "boxes.json"

Split = Literal["train", "val"]


class DatasetError(ValueError):
    """A box file or one of its photos cannot be used; the message is one line naming the culprit."""


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


def _check_box(where: str, number: int, box: object, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """One box as four floats inside a (w, h) photo, or a one-line :class:`DatasetError`."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise DatasetError(f"{where}: box {number} must be four numbers [x1, y1, x2, y2], got {box!r}")
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: box {number} must be four numbers [x1, y1, x2, y2], got {box!r}") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise DatasetError(f"{where}: box {number} has a number that is not finite: {box!r}")
    if not (x1 < x2 and y1 < y2):
        raise DatasetError(f"{where}: box {number} {list(box)} is empty (need x1 < x2 and y1 < y2)")
    w, h = size
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        raise DatasetError(f"{where}: box {number} {list(box)} lies outside the {w}×{h} photo")
    return x1, y1, x2, y2


def _entry(folder: Path, where: str, raw: object) -> AnnotatedPhoto:
    """Parse and check one ``images`` entry (not the photo's pixels: see :meth:`AnnotatedPhoto.load`)."""
    if not isinstance(raw, dict):
        raise DatasetError(f"{where}: each entry of 'images' must be an object")
    name = raw.get("file")
    if not isinstance(name, str) or not name or Path(name).name != name:
        raise DatasetError(f"{where}: 'file' must be a plain file name in the box file's folder, got {name!r}")
    where = f"{where} ({name})"
    path = folder / name
    if not path.is_file():
        raise DatasetError(f"{where}: no such photo in {folder}")
    split = raw.get("split", "train")
    if split not in ("train", "val"):
        raise DatasetError(f"{where}: 'split' must be 'train' or 'val', got {split!r}")
    try:
        size = (int(raw["width"]), int(raw["height"]))
    except (KeyError, TypeError, ValueError):
        raise DatasetError(f"{where}: needs integer 'width' and 'height'") from None
    boxes = raw.get("boxes")
    if not isinstance(boxes, list) or not boxes:
        raise DatasetError(f"{where}: needs a non-empty list 'boxes'")
    checked = tuple(_check_box(where, i + 1, box, size) for i, box in enumerate(boxes))
    labels = raw.get("labels") or [""] * len(checked)
    if not isinstance(labels, list) or len(labels) != len(checked):
        raise DatasetError(f"{where}: 'labels' must list one name per box ({len(checked)})")
    return AnnotatedPhoto(path, split, size, checked, tuple(str(v) for v in labels),
                          str(raw.get("licence", "")), str(raw.get("credit", "")))


def read_box_file(path: str | Path = BUNDLED) -> list[AnnotatedPhoto]:
    """Every entry of a box file (a ``boxes.json``, or the folder holding one), checked.

    Photos are only looked up here, not decoded: :func:`load_photos` decodes them.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "boxes.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such box file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DatasetError(f"{path}: expected an object with a list 'images' (format {FORMAT!r})")
    entries = [_entry(path.parent, f"{path.name} entry {i + 1}", raw) for i, raw in enumerate(doc["images"])]
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
