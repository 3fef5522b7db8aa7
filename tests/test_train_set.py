"""The bundled box file, training on several photos, the shipped head and the recall command.

Oracles: torchvision's own ``assign_targets_to_anchors``/``compute_loss`` (the losses a multi-photo
session reports), pixel geometry (mirroring), the trace == ``model.rpn`` equality for the shipped
model, and the shipped file's recorded sha256.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.rpn import concat_box_prediction_layers

import rpn_viz
from rpn_viz.training import dataset
from rpn_viz.io.box_files import BoxFileError
from rpn_viz.training.dataset import DatasetError, read_box_file
from rpn_viz.training import examples
from rpn_viz.training.examples import example_order, jitter_generator, jittered, mirrored
from rpn_viz.training.config import generalisation
from rpn_viz.model.paper import (BG_IOU, CUT, FG_IOU, SHIPPED_FACTS, SHIPPED_HEAD, SHIPPED_HEAD_SHA256,
                                 TRAIN_POSITIVE_IOU, TUNED_FROM, labelled_at,
                                 TunedHead, load_paper_model, load_trained_paper_model, split_for_tuning)
from rpn_viz.training.train_set import head_state, start_session, train
from rpn_viz.model.weights import WeightsError
from rpn_viz.testing import on_device

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
COFFEE_BOXES = [[172.0, 18.0, 412.0, 305.0]]  # the espresso cup with its handle


@pytest.fixture
def tiny_set(tmp_path) -> Path:
    """A two-photo box file made by the test: the coffee cup (train) and the cat (val)."""
    for name in ("coffee.jpg", "cat.jpg"):
        shutil.copy(ASSETS / name, tmp_path / name)
    doc = {"format": dataset.FORMAT, "images": [
        {"file": "coffee.jpg", "split": "train", "width": 600, "height": 400, "boxes": COFFEE_BOXES,
         "labels": ["cup"]},
        {"file": "cat.jpg", "split": "val", "width": 451, "height": 300, "boxes": [[0, 0, 400, 300]],
         "labels": ["cat"]},
    ]}
    (tmp_path / "boxes.json").write_text(json.dumps(doc))
    return tmp_path


def rewrite(folder: Path, change) -> Path:
    doc = json.loads((folder / "boxes.json").read_text())
    change(doc)
    (folder / "boxes.json").write_text(json.dumps(doc))
    return folder


# --- the box file ------------------------------------------------------------------------------


def test_the_bundled_set_is_as_the_issue_asks():
    entries = read_box_file()
    train, val = dataset.select(entries, "train"), dataset.select(entries, "val")
    assert len(entries) >= 120 and dataset.box_count(entries) >= 500
    assert len(val) >= 25 and 0.15 <= len(val) / len(entries) <= 0.3
    licences = {e.licence for e in entries}
    assert licences <= {"CC0", "Public domain", "CC BY 2.0", "CC BY 3.0", "CC BY 4.0"}, licences
    assert all(e.credit for e in entries)
    for entry, image in dataset.load_photos(entries):  # every photo opens at its stated size
        assert max(image.original_size) <= 1024
    listed = (ASSETS / "dataset" / "LICENSES.md").read_text()
    assert all(e.name in listed for e in entries), "every photo's licence is recorded"
    assert train and not {e.name for e in train} & {e.name for e in val}


def test_samples_come_with_their_boxes():
    for entry in json.loads((ASSETS / "samples.json").read_text()):
        assert entry["boxes"], entry["file"]
        image = rpn_viz.load_image(ASSETS / entry["file"])
        w, h = image.original_size
        for x1, y1, x2, y2 in entry["boxes"]:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, entry["file"]


def add_box(doc: dict, box: list) -> None:
    doc["images"][0]["boxes"].append(box)
    doc["images"][0]["labels"].append("thing")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: add_box(d, [500, 300, 700, 390]), "coffee.jpg's box 2 (thing) [500, 300, 700, 390] reaches 100 px outside the 600×400 photo"),
        (lambda d: add_box(d, [50, 50, 40, 60]), "coffee.jpg's box 2 (thing) [50, 50, 40, 60] is empty"),
        (lambda d: add_box(d, [1, 2, 3]), "coffee.jpg's box 2 should be [x1, y1, x2, y2]"),
        (lambda d: d["images"][0].update(file="missing.jpg"), "missing.jpg: no such photo"),
        (lambda d: d["images"][0].update(file="../coffee.jpg"), "plain file name"),
        (lambda d: d["images"][0].update(split="test"), "'split' must be 'train' or 'val'"),
        (lambda d: d["images"][0].update(labels=["a", "b"]), "coffee.jpg has 1 boxes but 2 labels"),
        (lambda d: d["images"].append(dict(d["images"][0])), "listed twice"),
        (lambda d: d.pop("images"), 'the file has no "images"'),
    ],
)
def test_a_bad_box_file_is_one_line_naming_the_culprit(tiny_set, change, message):
    with pytest.raises(BoxFileError) as error:  # the anchor lab's reader checks the same file first
        read_box_file(rewrite(tiny_set, change))
    text = str(error.value)
    assert message in text and "\n" not in text


def test_a_broken_photo_or_a_wrong_size_stops_before_training(tiny_set):
    (tiny_set / "cat.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    entries = read_box_file(tiny_set)
    with pytest.raises(DatasetError, match=r"^cat\.jpg: ") as error:
        dataset.load_photos(entries)
    assert "\n" not in str(error.value)
    rewrite(tiny_set, lambda d: d["images"][0].update(width=640))
    with pytest.raises(DatasetError, match="the photo is 600×400, but the box file says 640×400"):
        read_box_file(tiny_set)[0].load()
    (tiny_set / "boxes.json").write_text("{not json")
    with pytest.raises(BoxFileError, match="not valid JSON"):
        read_box_file(tiny_set)


# --- mirrored copies and the order of photos ------------------------------------------------------


def test_mirroring_flips_pixels_and_boxes_together():
    image = rpn_viz.load_image(ASSETS / "coffee.jpg")
    boxes = torch.tensor(COFFEE_BOXES)
    flipped, flipped_boxes = mirrored(image, boxes)
    assert np.array_equal(np.asarray(flipped.image), np.asarray(image.image)[:, ::-1])
    assert flipped_boxes.tolist() == [[600 - 412.0, 18.0, 600 - 172.0, 305.0]]
    assert flipped.original_size == image.original_size


def _square_photo() -> tuple[Image.Image, torch.Tensor]:
    """A 300×200 grey photo with one pure red object, and its tight box."""
    picture = np.full((200, 300, 3), 90, np.uint8)
    picture[40:120, 100:160] = (255, 0, 0)
    return Image.fromarray(picture), torch.tensor([[100.0, 40.0, 160.0, 120.0]])


def test_a_jittered_view_moves_its_boxes_with_its_pixels(monkeypatch):
    """Without colour jitter a view is exact pixels: each kept box is still tight around the red object."""
    monkeypatch.setattr(examples, "COLOUR", 0.0)
    image, box = _square_photo()
    sizes = set()
    for view in range(40):
        seen, boxes = jittered(image, box, jitter_generator(0, 0, view))
        pixels = np.asarray(seen.image).astype(int)
        red = np.argwhere((pixels == (255, 0, 0)).all(axis=2))
        assert seen.original_size == seen.image.size
        assert boxes.shape == (1, 4)  # the one object is kept (or the window holds the whole photo)
        (x1, y1, x2, y2) = boxes[0].tolist()
        assert (red[:, 1].min(), red[:, 0].min(), red[:, 1].max() + 1, red[:, 0].max() + 1) == (x1, y1, x2, y2)
        assert (x2 - x1) * (y2 - y1) >= examples.MIN_VISIBLE * 60 * 80
        sizes.add(seen.image.size)
    zooms = sorted(w / 300 for w, _ in sizes)
    assert zooms[0] < 0.8 and zooms[-1] > 1.3, "crops and zoom-outs both occur"
    assert all(examples.ZOOM[0] - 0.01 <= z <= examples.ZOOM[1] + 0.01 for z in zooms)
    again, again_boxes = jittered(image, box, jitter_generator(0, 0, 7))
    first, first_boxes = jittered(image, box, jitter_generator(0, 0, 7))
    assert np.array_equal(np.asarray(again.image), np.asarray(first.image)) and torch.equal(again_boxes, first_boxes)


def test_a_jittered_view_drops_slivers_and_keeps_the_photo_when_nothing_fits():
    image, box = _square_photo()
    tiny = torch.tensor([[0.0, 0.0, 4.0, 4.0]])  # 4 px: never a kept box (MIN_SIDE)
    seen, boxes = jittered(image, tiny, jitter_generator(0, 0, 0))
    assert seen.image.size == (300, 200) and boxes.tolist() in ([[0.0, 0.0, 4.0, 4.0]], [[296.0, 0.0, 300.0, 4.0]])
    both = torch.tensor([[0.0, 0.0, 4.0, 4.0], [100.0, 40.0, 160.0, 120.0]])
    for view in range(10):
        _, kept = jittered(image, both, jitter_generator(0, 0, view))
        assert kept.shape[0] == 1 and float(kept[0, 2] - kept[0, 0]) >= examples.MIN_SIDE


def test_every_photo_once_per_epoch_in_a_seeded_order():
    orders = [[example_order(5, step, seed=3) for step in range(1 + 5 * e, 6 + 5 * e)] for e in range(3)]
    assert all(sorted(order) == list(range(5)) for order in orders)
    assert orders[0] != orders[1] or orders[1] != orders[2]
    assert [example_order(5, s, 3) for s in range(1, 16)] == sum(orders, [])
    assert example_order(1, 7, 3) == 0


def test_generalisation_verdicts():
    assert generalisation([0.2, 0.3], [0.8, 0.75]).kind == "carries over"
    assert generalisation([0.2, 0.3], [0.5, 0.3]).kind == "improved"
    verdict = generalisation([0.5, 0.5], [0.52, 0.5])
    assert verdict.kind == "memorised" and verdict.gain == pytest.approx(0.01)


# --- training on several photos -------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper(imagenet_backbone):
    return load_paper_model(seed=0, device="cpu", allow_download=False)


def test_each_step_is_torchvisions_loss_on_its_photo(paper, tiny_set):
    photos = read_box_file(tiny_set)
    session, _ = start_session(paper, photos, seed=1, lr=0.01, jitter=0, tune_from=CUT)  # mirrors only, the head alone
    assert [(e.name, e.mirrored) for e in session.examples] == [
        ("coffee.jpg", False), ("coffee.jpg", True), ("cat.jpg", False), ("cat.jpg", True)]
    assert session.photo_count == 2
    # the mirrored cup's labels are torchvision's for the mirrored boxes on the mirrored photo, with
    # torchvision's Matcher at the recipe's thresholds (positive from IoU 0.5, negative below 0.3)
    image, boxes = mirrored(rpn_viz.load_image(tiny_set / "coffee.jpg"), torch.tensor(COFFEE_BOXES))
    traced = rpn_viz.trace(paper, image)
    target = [{"boxes": traced.to_input(boxes)}]
    paper_labels, _ = paper.model.rpn.assign_targets_to_anchors([traced.anchors], target)  # Matcher(0.7, 0.3)
    assert paper.model.rpn.proposal_matcher.high_threshold == FG_IOU == 0.7  # the model itself is the paper's
    rpn = copy.deepcopy(paper.model.rpn)  # a copy: the module-wide fixture stays the paper's
    rpn.proposal_matcher = Matcher(TRAIN_POSITIVE_IOU, BG_IOU, allow_low_quality_matches=True)
    labels, _ = rpn.assign_targets_to_anchors([traced.anchors], target)
    assert torch.equal(session.examples[1].labels, labels[0])
    assert int((labels[0] == 1).sum()) > int((paper_labels[0] == 1).sum()) > 0  # more anchors count as the cup
    assert torch.equal(labels[0] == 0, paper_labels[0] == 0)  # the same negatives
    for _ in range(4):
        head_before = {k: v.clone() for k, v in session.head.state_dict().items()}
        step = session.step()
        assert step.example == example_order(4, step.step, 1)
        example = session.examples[step.example]
        head = type(session.head)(96, 9)
        head.load_state_dict(head_before)
        logits, deltas = concat_box_prediction_layers(*head(example.features))
        with torch.random.fork_rng():
            torch.manual_seed(session.sampling_seed(step.step))
            objectness, box = paper.model.rpn.compute_loss(logits, deltas, [example.labels], [example.targets])
        assert step.objectness_loss == pytest.approx(float(objectness), rel=1e-5, abs=1e-7)
        assert step.box_loss == pytest.approx(float(box), rel=1e-5, abs=1e-7)
        positives, _ = session.minibatch_boxes(step)
        assert torch.equal(positives, example.anchors[step.positive])
    label = session.weights_info().label
    assert label.startswith("your RPN: trained on 2 photos for 4 steps")


def test_labelling_at_another_iou_changes_training_only(paper):
    """labelled_at moves the positive threshold of a copy; proposals and the start model stay as they were."""
    relabelled = labelled_at(paper, 0.5)
    matcher = relabelled.model.rpn.proposal_matcher
    assert (matcher.high_threshold, matcher.low_threshold, matcher.allow_low_quality_matches) == (0.5, BG_IOU, True)
    assert paper.model.rpn.proposal_matcher.high_threshold == FG_IOU
    photo = rpn_viz.load_image(ASSETS / "cat.jpg")
    assert torch.equal(rpn_viz.trace(relabelled, photo).result.boxes, rpn_viz.trace(paper, photo).result.boxes)
    for wrong in (BG_IOU, 1.5, float("nan")):
        with pytest.raises(ValueError, match="positive anchor's IoU"):
            labelled_at(paper, wrong)


def test_the_tuning_split_is_the_same_network(paper):
    """Moving the last blocks from the backbone into the trained part changes no number."""
    split = split_for_tuning(paper)
    photo = rpn_viz.load_image(ASSETS / "dogs.jpg")
    whole, cut = rpn_viz.trace(paper, photo), rpn_viz.trace(split, photo)
    assert cut.levels[0].features.shape[0] == 64 and whole.levels[0].features.shape[0] == 96  # block 10's, block 13's
    assert torch.equal(cut.anchors, whole.anchors) and torch.equal(cut.logits, whole.logits)
    assert torch.equal(cut.result.boxes, whole.result.boxes)
    with pytest.raises(ValueError, match="stride 16"):
        split_for_tuning(paper, 7)


def test_a_tuned_session_trains_the_last_blocks_and_saves_them_with_the_head(paper, tiny_set, tmp_path, device):
    """On the CPU and on CUDA: blocks 11–13 train with the head; the saved file gives the session's proposals."""
    paper = on_device(paper, device)
    before = {k: v.clone() for k, v in paper.model.state_dict().items()}
    session, _ = start_session(paper, read_box_file(tiny_set), seed=1, jitter=0)  # the default: blocks 11–13 too
    assert isinstance(session.head, TunedHead) and len(session.head.blocks) == CUT - TUNED_FROM
    assert session.device == device and next(session.head.parameters()).device.type == device.type
    blocks_before = {k: v.clone() for k, v in session.head.blocks.state_dict().items()}
    step = session.step()
    example = session.examples[step.example]
    assert example.features[0].shape[1] == 64  # what the frozen blocks below give
    changed = [k for k, v in session.head.blocks.state_dict().items() if not torch.equal(v, blocks_before[k])]
    assert changed and all(".conv." in k and k.endswith("weight") for k in changed)  # convolutions; batch norm frozen
    assert all(torch.equal(v, before[k]) for k, v in paper.model.state_dict().items())  # the start is untouched
    train(session, 3)
    state = head_state(session)
    assert set(state) == {name for name, _ in session.head.named_parameters()}
    assert not any("running_mean" in k for k in state)  # ImageNet's statistics come from the official file
    path = tmp_path / "TUNED.pt"
    torch.save(state, path)
    loaded = load_trained_paper_model(head=path, allow_download=False, device=device)
    photo = rpn_viz.load_image(ASSETS / "coffee.jpg")
    assert torch.equal(rpn_viz.trace(loaded, photo).result.boxes, session.trace(photo).result.boxes)
    state["blocks.11.conv.0.0.weight"] = state["blocks.11.conv.0.0.weight"][:, :3]
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"blocks.11.conv.0.0.weight has shape \(384, 3, 1, 1\)"):
        load_trained_paper_model(head=path, allow_download=False, device="cpu")


def test_training_on_a_set_is_deterministic(paper, tiny_set):
    photos = read_box_file(tiny_set)
    states = []
    for seed in (0, 0, 1):
        session, _ = start_session(paper, photos, seed=seed, jitter=1)
        assert len(session.examples) == 2 * 3  # each photo, its mirror, one jittered view
        train(session, 6)
        states.append(head_state(session))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


# --- the shipped head ------------------------------------------------------------------------------


def test_the_shipped_head_is_the_recorded_file():
    facts = json.loads(SHIPPED_FACTS.read_text())
    digest = hashlib.sha256(SHIPPED_HEAD.read_bytes()).hexdigest()
    assert digest == SHIPPED_HEAD_SHA256 == facts["sha256"]
    assert facts["photos"] == len(dataset.select(read_box_file(), "train"))
    assert SHIPPED_HEAD.stat().st_size < 4_000_000  # the issue's limit
    assert facts["tuned_blocks"] == CUT - TUNED_FROM and facts["positive_iou"] == TRAIN_POSITIVE_IOU
    readme = (SHIPPED_HEAD.parent / "README.md").read_text()
    assert SHIPPED_HEAD_SHA256 in readme and facts["command"] in readme


def test_the_shipped_model_is_trained_and_labelled(shipped, photos):
    assert shipped.weights.kind == "trained here"
    assert f"head trained on {json.loads(SHIPPED_FACTS.read_text())['photos']} bundled photos" in shipped.weights.label
    traced = rpn_viz.trace(shipped, photos[0])
    probabilities = torch.sigmoid(traced.logits)
    assert float(probabilities.std()) > 0.05, "objectness must not be flat"
    assert float(traced.result.scores[0]) > 0.9, "its best proposal is confident"
    # most anchors are background (63 % here: positives from IoU 0.45 make anchors that half-cover an object object-like)
    assert float((probabilities < 0.5).float().mean()) > 0.5, "most anchors are background"
    moved = (traced.proposals - traced.anchors).abs().max(dim=1).values
    assert float((moved > 8).float().mean()) > 0.5, "proposals are not just their anchors"


def test_a_tampered_or_broken_head_is_refused_in_one_line(imagenet_backbone, tmp_path, monkeypatch):
    state = torch.load(SHIPPED_HEAD, weights_only=True)
    state["head.conv.0.bias"] = state["head.conv.0.bias"] + 1
    tampered = tmp_path / "paper_rpn_head.pt"
    torch.save(state, tampered)
    monkeypatch.setattr("rpn_viz.model.paper.SHIPPED_HEAD", tampered)
    with pytest.raises(WeightsError, match="is not the shipped head .*restore it with git checkout"):
        load_trained_paper_model(allow_download=False)
    broken = tmp_path / "HEAD.pt"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(WeightsError, match="Cannot read HEAD.pt as a PyTorch checkpoint"):
        load_trained_paper_model(head=broken, allow_download=False)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(WeightsError, match="is not a head of the paper's RPN") as error:
        load_trained_paper_model(head=other, allow_download=False)
    assert "\n" not in str(error.value)


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # python processes, each importing torch and loading the paper's RPN
def test_train_save_and_use_your_head_from_the_command_line(imagenet_backbone, tiny_set, tmp_path):
    head = tmp_path / "HEAD.pt"
    done = run_module("rpn_viz", "train", "--dataset", str(tiny_set), "--steps", "4", "--save", str(head),
                      "--no-download", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    facts = json.loads(head.with_suffix(".json").read_text())
    assert facts["steps"] == 4 and facts["photos"] == 1 and facts["flips"] is True and facts["tuned_blocks"] == 3
    assert facts["positive_iou"] == 0.45 and "--positive-iou" not in facts["command"]  # the default
    assert facts["sha256"] == hashlib.sha256(head.read_bytes()).hexdigest()
    used = run_module("rpn_viz", str(ASSETS / "cat.jpg"), "--model", "paper_rpn", "--checkpoint", str(head),
                      "--json", "-", "--no-download", "--device", "cpu")
    assert used.returncode == 0, used.stderr
    doc = json.loads(used.stdout)
    assert doc["weights"]["sha256"] == facts["sha256"] and "your head HEAD.pt" in doc["weights"]["label"]
    bad = run_module("rpn_viz", "train", "--dataset", str(tmp_path / "nowhere"), "--no-download")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such box file" in bad.stderr
    low = run_module("rpn_viz", "train", "--tune-from", "7", "--no-download")
    assert low.returncode == 2 and low.stderr.count("\n") == 1 and "--tune-from must be 8 to 14" in low.stderr
    loose = run_module("rpn_viz", "train", "--positive-iou", "0.3", "--no-download")
    assert loose.returncode == 2 and loose.stderr.count("\n") == 1 and "--positive-iou must be above 0.3" in loose.stderr


@pytest.mark.slow  # python processes, each importing torch and loading the paper's RPN
def test_the_recall_command_prints_every_method(imagenet_backbone, tiny_set):
    done = run_module("rpn_viz", "evaluate", "--dataset", str(tiny_set), "--no-download", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    for method in ("RPN: the paper's RPN", "untrained head", "Selective Search", "sliding windows"):
        assert method in done.stdout
    assert "val split: 1 photos, 1 boxes" in done.stdout
