"""Ground-truth boxes from files: COCO-style JSON, Pascal VOC XML and the bundled set's own JSON.

Every reader returns :class:`ImageBoxes` — one photo's name, size and (x1, y1, x2, y2) boxes in that
photo's pixels, with a label per box — and every problem is a :class:`BoxFileError`: one line that
starts with the file's name and says what is wrong (malformed file, a box outside its photo, a photo
the file does not list), so the app can show it in one ``st.error`` and keep the boxes it had.

Formats:

* **COCO** (``instances_*.json``): ``images`` (``id``, ``file_name``, ``width``, ``height``),
  ``annotations`` (``image_id``, ``bbox`` = [x, y, width, height], ``category_id``, optional
  ``iscrowd``) and optional ``categories`` (``id``, ``name``). Crowd regions (``iscrowd: 1``) are
  left out, as torchvision's detection references do when training.
* **Pascal VOC** (one XML per photo): ``<filename>``, ``<size><width><height>``, and per object
  ``<name>`` and ``<bndbox>`` with ``xmin``, ``ymin``, ``xmax``, ``ymax``.
* **rpn_viz boxes v1** (``assets/dataset/boxes.json``): ``{"format": "rpn_viz boxes v1", "images":
  [{"file", "split", "width", "height", "boxes": [[x1, y1, x2, y2], ...], "labels": [...]}]}``.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Iterable, Sequence

from .errors import UserError
from .paths import assets_dir

BUNDLED_FORMAT = "rpn_viz boxes v1"
try:  # the checkout's assets/, or the copy a non-editable install put under <prefix>/share/rpn-viz/
    BUNDLED_PATH = assets_dir() / "dataset" / "boxes.json"
except FileNotFoundError:  # neither: load_bundled() then says there is no bundled set
    BUNDLED_PATH = Path(__file__).resolve().parents[2] / "assets" / "dataset" / "boxes.json"
#: A box may reach this many pixels past the photo's border (rounding in annotation tools); it is clipped.
TOLERANCE_PX = 1.0
MAX_BYTES = 50 * 1024 * 1024

Box = tuple[float, float, float, float]


class BoxFileError(UserError, ValueError):
    """One-line, user-facing reason a box file could not be used (starts with the file's name).

    A :class:`~rpn_viz.io.errors.UserError`, so the project's one error formatter,
    :func:`rpn_viz.io.errors.describe_error`, shows the message as it is.
    """


@dataclass(frozen=True)
class ImageBoxes:
    """The ground-truth boxes of one photo, in that photo's pixels."""

    file: str  # the photo's file name, as the box file spells it
    width: int | None  # the photo's size according to the box file (None when it does not say)
    height: int | None
    boxes: tuple[Box, ...]
    labels: tuple[str, ...]
    split: str | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        return None if self.width is None or self.height is None else (self.width, self.height)

    def scaled(self, size: tuple[int, int]) -> list[list[float]]:
        """The boxes in the pixels of the same photo shown at ``size`` = (w, h) (e.g. after a downscale)."""
        if self.size is None or self.size == tuple(size):
            return [list(b) for b in self.boxes]
        sx, sy = size[0] / self.width, size[1] / self.height
        return [[x1 * sx, y1 * sy, x2 * sx, y2 * sy] for x1, y1, x2, y2 in self.boxes]


def base_name(path: str) -> str:
    """The file name without folders, for POSIX or Windows paths (annotation tools write both)."""
    return PureWindowsPath(PurePosixPath(str(path)).name).name


# --------------------------------------------------------------------------------------------------
# checks shared by every format
# --------------------------------------------------------------------------------------------------


def _number(value: Any, source: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BoxFileError(f"{source}: {where} is {value!r}, not a number.") from None
    if not math.isfinite(number):
        raise BoxFileError(f"{source}: {where} is {value!r}, not a finite number.")
    return number


def _size(width: Any, height: Any, source: str, where: str) -> tuple[int | None, int | None]:
    """The photo size a file states; (None, None) when it states none (VOC files often say 0×0)."""
    if width in (None, "", 0, "0") and height in (None, "", 0, "0"):
        return None, None
    w, h = _number(width, source, f"{where}'s width"), _number(height, source, f"{where}'s height")
    if w <= 0 or h <= 0 or w != int(w) or h != int(h):
        raise BoxFileError(f"{source}: {where} has size {width}×{height}; width and height must be whole pixels.")
    return int(w), int(h)


def _check_box(box: Sequence[float], size: tuple[int | None, int | None], source: str, where: str) -> Box:
    """A valid (x1, y1, x2, y2) inside the photo (clipped within :data:`TOLERANCE_PX`), or a BoxFileError."""
    x1, y1, x2, y2 = box
    shown = f"[{x1:g}, {y1:g}, {x2:g}, {y2:g}]"
    if not (x2 > x1 and y2 > y1):
        raise BoxFileError(f"{source}: {where} {shown} is empty: x2 must exceed x1 and y2 exceed y1.")
    w, h = size
    if w is not None and h is not None:
        past = max(-x1, -y1, x2 - w, y2 - h)
        if past > TOLERANCE_PX:
            raise BoxFileError(f"{source}: {where} {shown} reaches {past:g} px outside the {w}×{h} photo.")
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
    return (x1, y1, x2, y2)


def _text(data: bytes | str, source: str) -> str:
    if len(data) > MAX_BYTES:
        raise BoxFileError(f"{source}: {len(data) / 2**20:.0f} MB is too large for a box file (at most "
                           f"{MAX_BYTES // 2**20} MB).")
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BoxFileError(f"{source}: not a text file (it is not UTF-8).") from None


def decode_json(data: bytes | str, source: str) -> Any:
    """The JSON document in ``data``; :class:`BoxFileError` (one line, with the position) if it is not JSON."""
    text = _text(data, source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoxFileError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).") from None


def _require(mapping: Any, key: str, kind: type | tuple[type, ...], source: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise BoxFileError(f"{source}: {where} has no \"{key}\".")
    value = mapping[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BoxFileError(f"{source}: {where}'s \"{key}\" should be a {names}, not {type(value).__name__}.")
    return value


# --------------------------------------------------------------------------------------------------
# the three formats
# --------------------------------------------------------------------------------------------------


def parse_coco(data: bytes | str, source: str = "boxes.json") -> list[ImageBoxes]:
    """Every image of a COCO-style JSON with its boxes (converted from [x, y, w, h] to corners)."""
    doc = decode_json(data, source)
    if not isinstance(doc, dict):
        raise BoxFileError(f"{source}: a COCO file is a JSON object with \"images\" and \"annotations\".")
    images = _require(doc, "images", list, source, "the file")
    annotations = _require(doc, "annotations", list, source, "the file")
    names = {}
    for category in doc.get("categories") or []:
        if isinstance(category, dict) and "id" in category:
            names[category["id"]] = str(category.get("name", category["id"]))
    by_id: dict[Any, dict] = {}
    for i, image in enumerate(images):
        where = f"image {i + 1}"
        file = base_name(_require(image, "file_name", str, source, where))
        if "id" not in image:
            raise BoxFileError(f"{source}: {where} ({file}) has no \"id\".")
        size = _size(image.get("width"), image.get("height"), source, f"{where} ({file})")
        by_id[image["id"]] = {"file": file, "size": size, "boxes": [], "labels": []}
    for i, annotation in enumerate(annotations):
        where = f"annotation {i + 1}"
        if not isinstance(annotation, dict) or annotation.get("image_id") not in by_id:
            image_id = annotation.get("image_id") if isinstance(annotation, dict) else None
            raise BoxFileError(f"{source}: {where} refers to image id {image_id!r}, which \"images\" does not list.")
        if annotation.get("iscrowd"):
            continue
        bbox = _require(annotation, "bbox", list, source, where)
        if len(bbox) != 4:
            raise BoxFileError(f"{source}: {where}'s bbox has {len(bbox)} numbers; COCO's is [x, y, width, height].")
        x, y, w, h = (_number(v, source, f"{where}'s bbox") for v in bbox)
        entry = by_id[annotation["image_id"]]
        label = names.get(annotation.get("category_id"), str(annotation.get("category_id", "object")))
        entry["boxes"].append(_check_box((x, y, x + w, y + h), entry["size"], source, f"{where} ({entry['file']}, {label})"))
        entry["labels"].append(label)
    return [ImageBoxes(e["file"], *e["size"], tuple(e["boxes"]), tuple(e["labels"])) for e in by_id.values()]


def parse_voc(data: bytes | str, source: str = "boxes.xml") -> ImageBoxes:
    """One photo's boxes from a Pascal VOC XML annotation."""
    text = _text(data, source)
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise BoxFileError(f"{source}: not valid XML ({exc}).") from None
    if root.tag != "annotation":
        raise BoxFileError(f"{source}: a Pascal VOC file starts with <annotation>, this one with <{root.tag}>.")
    file = (root.findtext("filename") or "").strip()
    if not file:
        raise BoxFileError(f"{source}: no <filename>: which photo do these boxes belong to?")
    file = base_name(file)
    size_node = root.find("size")
    size = (None, None) if size_node is None else _size(
        (size_node.findtext("width") or "").strip(), (size_node.findtext("height") or "").strip(), source, file)
    boxes, labels = [], []
    for i, obj in enumerate(root.iter("object")):
        label = (obj.findtext("name") or "object").strip()
        where = f"object {i + 1} ({label})"
        node = obj.find("bndbox")
        if node is None:
            raise BoxFileError(f"{source}: {where} has no <bndbox>.")
        corners = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            value = node.findtext(tag)
            if value is None:
                raise BoxFileError(f"{source}: {where}'s <bndbox> has no <{tag}>.")
            corners.append(_number(value.strip(), source, f"{where}'s <{tag}>"))
        boxes.append(_check_box(corners, size, source, where))
        labels.append(label)
    return ImageBoxes(file, *size, tuple(boxes), tuple(labels))


def parse_bundled(data: bytes | str | dict, source: str = "boxes.json") -> list[ImageBoxes]:
    """The bundled set's own JSON (``"format": "rpn_viz boxes v1"``): corners in each photo's pixels.

    ``data`` is the file's bytes or text, or its document already decoded by :func:`decode_json` (the
    training set reader, :func:`rpn_viz.training.dataset.read_box_file`, also reads its other keys)."""
    doc = data if isinstance(data, dict) else decode_json(data, source)
    if not isinstance(doc, dict) or doc.get("format") != BUNDLED_FORMAT:
        raise BoxFileError(f"{source}: expected \"format\": \"{BUNDLED_FORMAT}\".")
    return [parse_entry(image, source, f"image {i + 1}")
            for i, image in enumerate(_require(doc, "images", list, source, "the file"))]


def parse_entry(image: Any, source: str, where: str = "the entry",
                size: tuple[int, int] | None = None) -> ImageBoxes:
    """One photo's entry of the bundled format (also the ``"boxes"``/``"labels"`` of ``assets/samples.json``):
    ``file``, ``width``/``height`` (or ``size`` when the entry has none), ``boxes`` and ``labels``."""
    file = base_name(_require(image, "file", str, source, where))
    stated = _size(image.get("width"), image.get("height"), source, file)
    stated = stated if stated != (None, None) or size is None else tuple(size)
    raw = _require(image, "boxes", list, source, file)
    labels = image.get("labels")
    labels = ["object"] * len(raw) if labels is None else labels
    if not isinstance(labels, list) or len(labels) != len(raw):
        raise BoxFileError(f"{source}: {file} has {len(raw)} boxes but "
                           f"{len(labels) if isinstance(labels, list) else 'no list of'} labels.")
    boxes = []
    for j, (box, label) in enumerate(zip(raw, labels)):
        if not isinstance(box, list) or len(box) != 4:
            raise BoxFileError(f"{source}: {file}'s box {j + 1} should be [x1, y1, x2, y2].")
        where_box = f"{file}'s box {j + 1} ({label})"
        boxes.append(_check_box([_number(v, source, where_box) for v in box], stated, source, where_box))
    return ImageBoxes(file, *stated, tuple(boxes), tuple(str(lb) for lb in labels), image.get("split"))


def read_box_file(name: str, data: bytes | str) -> list[ImageBoxes]:
    """The photos and boxes of one file, its format told by its extension (.xml) or its content (.json)."""
    source = base_name(name) or "box file"
    suffix = Path(source).suffix.lower()
    if suffix == ".xml":
        return [parse_voc(data, source)]
    if suffix != ".json":
        raise BoxFileError(f"{source}: expected a COCO-style .json or a Pascal VOC .xml file.")
    doc = decode_json(data, source)
    if isinstance(doc, dict) and doc.get("format") == BUNDLED_FORMAT:
        return parse_bundled(data, source)
    return parse_coco(data, source)


def read_box_files(files: Iterable[tuple[str, bytes | str]]) -> list[ImageBoxes]:
    """A folder's worth of box files as one set; a photo described by two files is an error."""
    out: list[ImageBoxes] = []
    seen: dict[str, str] = {}
    for name, data in files:
        for image in read_box_file(name, data):
            if image.file in seen:
                raise BoxFileError(f"{base_name(name)}: {image.file} is also described by {seen[image.file]}; "
                                   "give each photo's boxes once.")
            seen[image.file] = base_name(name)
            out.append(image)
    return out


def boxes_for_photo(images: Sequence[ImageBoxes], photo_name: str, photo_size: tuple[int, int],
                    source: str = "box file") -> ImageBoxes:
    """The entry for the photo called ``photo_name`` of (w, h) pixels, checked against its size.

    The name is matched without folders, then without case. A file that lists other photos only, or
    that gives this photo another size, is an error (its boxes would land in the wrong place).
    """
    wanted = base_name(photo_name)
    match = [im for im in images if im.file == wanted] or [im for im in images if im.file.lower() == wanted.lower()]
    if not match:
        listed = ", ".join(im.file for im in images[:3]) + (f" and {len(images) - 3} more" if len(images) > 3 else "")
        raise BoxFileError(f"{source}: has no boxes for {wanted} (it lists {listed or 'no photo'}).")
    image = match[0]
    if image.size is not None and tuple(image.size) != tuple(photo_size):
        raise BoxFileError(f"{source}: gives {wanted} as {image.width}×{image.height} pixels, but this photo is "
                           f"{photo_size[0]}×{photo_size[1]}: its boxes would land in the wrong place.")
    return image


def load_bundled(path: Path | None = None) -> list[ImageBoxes] | None:
    """The bundled training set's boxes (default :data:`BUNDLED_PATH`), or None when the file is missing."""
    path = BUNDLED_PATH if path is None else path
    if not path.is_file():
        return None
    return parse_bundled(path.read_bytes(), path.name)
