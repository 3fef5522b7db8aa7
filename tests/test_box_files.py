"""Box files: COCO JSON, Pascal VOC XML and the bundled set's JSON, good and bad (rpn_viz.io.box_files)."""

from __future__ import annotations

import json

import pytest

from rpn_viz.io import box_files as bf
from rpn_viz.io.errors import describe_error

COCO = {
    "images": [{"id": 1, "file_name": "photos/cat.jpg", "width": 451, "height": 300},
               {"id": 2, "file_name": "dog.jpg", "width": 640, "height": 480}],
    "annotations": [{"id": 10, "image_id": 1, "bbox": [10, 20, 100, 50], "category_id": 17},
                    {"id": 11, "image_id": 1, "bbox": [0, 0, 451.5, 300], "category_id": 17},  # ½ px over: clipped
                    {"id": 12, "image_id": 1, "bbox": [5, 5, 50, 50], "category_id": 17, "iscrowd": 1},
                    {"id": 13, "image_id": 2, "bbox": [1, 2, 3, 4], "category_id": 99}],
    "categories": [{"id": 17, "name": "cat"}],
}

VOC = """<annotation><folder>VOC2007</folder><filename>cat.jpg</filename>
<size><width>451</width><height>300</height><depth>3</depth></size>
<object><name>cat</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>70</ymax></bndbox></object>
<object><name>person</name><bndbox><xmin>200</xmin><ymin>0</ymin><xmax>451</xmax><ymax>300</ymax></bndbox></object>
</annotation>"""


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = describe_error(exc.value)  # what the app shows
    assert "\n" not in message and not message.startswith("BoxFileError")
    return message


def test_coco_corners_labels_clipping_and_crowd() -> None:
    images = bf.read_box_file("instances.json", json.dumps(COCO).encode())
    cat, dog = images
    assert (cat.file, cat.size) == ("cat.jpg", (451, 300))
    assert cat.boxes == ((10, 20, 110, 70), (0, 0, 451, 300))  # [x, y, w, h] → corners; crowd left out
    assert cat.labels == ("cat", "cat") and dog.labels == ("99",)  # unnamed category: its id
    assert bf.boxes_for_photo(images, "cat.jpg", (451, 300)) is cat
    assert bf.boxes_for_photo(images, "CAT.JPG", (451, 300)) is cat  # case-insensitive fallback


def test_voc() -> None:
    (image,) = bf.read_box_file("cat.xml", VOC)
    assert (image.file, image.size) == ("cat.jpg", (451, 300))
    assert image.boxes == ((10, 20, 110, 70), (200, 0, 451, 300)) and image.labels == ("cat", "person")
    assert image.scaled((902, 600))[0] == [20, 40, 220, 140]  # the same photo shown twice as large


def test_bundled_format(tmp_path) -> None:
    doc = {"format": bf.BUNDLED_FORMAT, "box_format": "x1,y1,x2,y2 in the photo's pixels",
           "images": [{"file": "x.jpg", "split": "train", "width": 640, "height": 427,
                       "boxes": [[12, 30, 200, 400]], "labels": ["bicycle"], "licence": "CC BY 4.0", "credit": "me"}]}
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(doc))
    (image,) = bf.load_bundled(path)
    assert image == bf.ImageBoxes("x.jpg", 640, 427, ((12, 30, 200, 400),), ("bicycle",), "train")
    assert bf.read_box_file("boxes.json", path.read_bytes()) == [image]
    assert bf.load_bundled(tmp_path / "missing.json") is None


def test_a_folder_of_voc_files_and_a_photo_described_twice() -> None:
    other = VOC.replace("cat.jpg", "dog.jpg")
    images = bf.read_box_files([("cat.xml", VOC), ("dog.xml", other)])
    assert [im.file for im in images] == ["cat.jpg", "dog.jpg"]
    with pytest.raises(bf.BoxFileError) as exc:
        bf.read_box_files([("cat.xml", VOC), ("copy.xml", VOC)])
    assert one_line(exc) == "copy.xml: cat.jpg is also described by cat.xml; give each photo's boxes once."


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.json", b"{\"images\": [", "a.json: not valid JSON (Expecting value at line 1, column 13)."),
        ("a.json", b"[1, 2]", "a.json: a COCO file is a JSON object"),
        ("a.json", json.dumps({"images": []}).encode(), "a.json: the file has no \"annotations\"."),
        ("a.json", json.dumps({**COCO, "annotations": [{"image_id": 7, "bbox": [0, 0, 1, 1]}]}).encode(),
         "a.json: annotation 1 refers to image id 7, which \"images\" does not list."),
        ("a.json", json.dumps({**COCO, "annotations": [{"image_id": 1, "bbox": [0, 0, 1]}]}).encode(),
         "a.json: annotation 1's bbox has 3 numbers"),
        ("a.json", json.dumps({**COCO, "annotations": [{"image_id": 1, "bbox": [0, 0, "wide", 1]}]}).encode(),
         "a.json: annotation 1's bbox is 'wide', not a number."),
        ("a.json", json.dumps({**COCO, "annotations": [{"image_id": 1, "bbox": [400, 10, 100, 50],
                                                        "category_id": 17}]}).encode(),
         "a.json: annotation 1 (cat.jpg, cat) [400, 10, 500, 60] reaches 49 px outside the 451×300 photo."),
        ("a.json", json.dumps({**COCO, "annotations": [{"image_id": 1, "bbox": [10, 10, 0, 50]}]}).encode(),
         "a.json: annotation 1 (cat.jpg, object) [10, 10, 10, 60] is empty"),
        ("a.xml", b"<annotation><filename>cat.jpg</filename><object>", "a.xml: not valid XML (no element found"),
        ("a.xml", b"<html/>", "a.xml: a Pascal VOC file starts with <annotation>, this one with <html>."),
        ("a.xml", VOC.replace("<xmax>110</xmax>", "").encode(), "a.xml: object 1 (cat)'s <bndbox> has no <xmax>."),
        ("a.xml", VOC.replace("<xmin>200</xmin>", "<xmin>-50</xmin>").encode(),
         "a.xml: object 2 (person) [-50, 0, 451, 300] reaches 50 px outside the 451×300 photo."),
        ("a.xml", VOC.replace("<filename>cat.jpg</filename>", "").encode(), "a.xml: no <filename>"),
        ("a.xml", b"\xff\xfe\x00junk", "a.xml: not a text file (it is not UTF-8)."),
        ("boxes.txt", b"1 2 3 4", "boxes.txt: expected a COCO-style .json or a Pascal VOC .xml file."),
        ("b.json", json.dumps({"format": bf.BUNDLED_FORMAT, "images": [
            {"file": "x.jpg", "width": 10, "height": 10, "boxes": [[1, 1, 5, 5]], "labels": []}]}).encode(),
         "b.json: x.jpg has 1 boxes but 0 labels."),
    ],
)
def test_malformed_files_give_one_line(name: str, data: bytes, message: str) -> None:
    with pytest.raises(bf.BoxFileError) as exc:
        bf.read_box_file(name, data)
    assert isinstance(exc.value, ValueError)
    assert one_line(exc).startswith(message)


def test_unknown_photo_and_wrong_size() -> None:
    images = bf.read_box_file("instances.json", json.dumps(COCO).encode())
    with pytest.raises(bf.BoxFileError) as exc:
        bf.boxes_for_photo(images, "wine.jpg", (640, 480), "instances.json")
    assert one_line(exc) == "instances.json: has no boxes for wine.jpg (it lists cat.jpg, dog.jpg)."
    with pytest.raises(bf.BoxFileError) as exc:
        bf.boxes_for_photo(images, "cat.jpg", (902, 600), "instances.json")
    assert "gives cat.jpg as 451×300 pixels, but this photo is 902×600" in one_line(exc)


def test_a_sample_entry_with_boxes_takes_the_photo_size() -> None:
    entry = {"file": "wine.jpg", "title": "Wine", "boxes": [[20, 495, 430, 765]], "labels": ["drum"]}
    image = bf.parse_entry(entry, "samples.json", size=(800, 1200))
    assert image == bf.ImageBoxes("wine.jpg", 800, 1200, ((20, 495, 430, 765),), ("drum",))
    with pytest.raises(bf.BoxFileError) as exc:
        bf.parse_entry({**entry, "boxes": [[20, 495, 900, 765]]}, "samples.json", size=(800, 1200))
    assert one_line(exc) == "samples.json: wine.jpg's box 1 (drum) [20, 495, 900, 765] reaches 100 px outside the 800×1200 photo."
