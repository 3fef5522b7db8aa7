"""Tests for rpn_viz.model.paper, rpn_viz.training.session and rpn-viz learn, against torchvision's own RPN as the oracle.

Real weights only: the ImageNet MobileNetV2 file is looked for in $RPN_VIZ_WEIGHTS_DIR (else
../shared/weights beside the checkout) and torchvision's cache; without it these
tests skip and say why. The fine-tuning path is checked on conftest's ``untrained`` COCO-layout
Faster R-CNN (the COCO files cannot be had offline) — labelled untrained, never presented as trained.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.rpn import concat_box_prediction_layers

from rpn_viz import FilterSettings, load_image, trace
from rpn_viz.commands.learn import main as learn_main
from rpn_viz.training.examples import best_iou_top_k, check_boxes
from rpn_viz.training.session import TrainingSession, copy_for_training
from rpn_viz.training.config import TrainConfig
from rpn_viz.model.paper import PaperRPNHead, feature_stride, load_paper_model
from rpn_viz.testing import on_device, torchvision_input

ROOT = Path(__file__).resolve().parent.parent
CAT = ROOT / "assets" / "cat.jpg"  # 451×300, a tabby cat's face filling the photo
CAT_BOX = (0.0, 0.0, 400.0, 300.0)  # the cat: left edge to the grey background on the right
COFFEE = ROOT / "assets" / "coffee.jpg"
CUP_BOX = (172.0, 18.0, 412.0, 305.0)  # the espresso cup with its handle, without the saucer


@pytest.fixture(scope="module")
def paper(imagenet_backbone):
    """The paper's RPN (ImageNet MobileNetV2 + fresh head, seed 0), or a visible skip."""
    return load_paper_model(seed=0, device="cpu", allow_download=False)


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bit_identical(before: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    after = model.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, f"shared model changed: {changed[:5]}"


def rpn_inputs(loaded, path: Path):
    """The model's own transform and backbone on a photo, run here independently of the session."""
    image = load_image(path)
    images = torchvision_input(loaded, image)
    with torch.no_grad():
        features = loaded.model.backbone(images.tensors)
    h, w = images.image_sizes[0]
    scale = torch.tensor([w / image.original_size[0], h / image.original_size[1]] * 2)
    return images, features, scale


@pytest.fixture(scope="module")
def cat_inputs(paper):
    """(images, features, scale) of the cat, from the paper model's own transform and backbone."""
    return rpn_inputs(paper, CAT)


@pytest.fixture(scope="module")
def trained(paper):
    """100 default steps on the cat, with the shared model's state taken before."""
    before = state_copy(paper.model)
    session = TrainingSession(paper, CAT, [CAT_BOX], TrainConfig(seed=0))
    session.run(100)
    return session, before


def test_paper_model_layout(paper):
    model = paper.model
    assert feature_stride(model) == (16, 16)  # measured, not assumed
    assert model.backbone.out_channels == 96
    head = model.rpn.head
    assert isinstance(head, PaperRPNHead) and head.num_anchors == 9
    assert head.conv[0].out_channels == 512 and head.conv[0].kernel_size == (3, 3)
    assert head.cls_scores.out_channels == 18 and head.bbox_pred.out_channels == 36
    assert model.rpn.anchor_generator.sizes == ((128, 256, 512),)
    assert model.rpn.anchor_generator.aspect_ratios == ((0.5, 1.0, 2.0),)
    assert model.transform.min_size == (600,) and model.transform.max_size == 1000
    # NMS IoU 0.55 and pre-NMS top-12,000: measured, not the paper's 0.7 and 6,000 (rpn_viz.model.paper)
    assert FilterSettings.from_rpn(model.rpn) == FilterSettings(0.55, 12000, 300, 0.0)
    matcher = model.rpn.proposal_matcher
    assert (matcher.high_threshold, matcher.low_threshold, matcher.allow_low_quality_matches) == (0.7, 0.3, True)
    sampler = model.rpn.fg_bg_sampler
    assert (sampler.batch_size_per_image, sampler.positive_fraction) == (256, 0.5)
    assert paper.weights.kind == "untrained" and not paper.is_trained
    assert not any(p.requires_grad for p in model.parameters())
    # the head is a function of its seed alone: same seed, same weights; another seed, others
    assert torch.equal(PaperRPNHead(96, 9, seed=0).conv[0].weight, head.conv[0].weight)
    assert not torch.equal(PaperRPNHead(96, 9, seed=1).conv[0].weight, head.conv[0].weight)


def test_softmax_scores_equal_sigmoid_of_logit_difference(paper, cat_inputs):
    head = paper.model.rpn.head
    _, features, _ = cat_inputs
    feature = features["0"]
    with torch.no_grad():
        prob_softmax = head.object_probability(feature)
        _, logits, _ = head.trace_parts(feature)
        torch.testing.assert_close(torch.sigmoid(logits), prob_softmax, rtol=0, atol=1e-6)
        # in float64, over a wide range of scores, the identity is exact to rounding
        background, obj = torch.randn(2, 10000, dtype=torch.float64) * 20
        softmax = torch.softmax(torch.stack([background, obj]), dim=0)[1]
        torch.testing.assert_close(torch.sigmoid(obj - background), softmax, rtol=1e-12, atol=1e-15)
        # so torchvision's binary cross-entropy on the logit is the paper's 2-class log loss
        target = (torch.rand(10000, generator=torch.Generator().manual_seed(0)) > 0.5).double()
        bce = F.binary_cross_entropy_with_logits(obj - background, target)
        log_loss = F.cross_entropy(torch.stack([background, obj], dim=1), target.long())
        torch.testing.assert_close(bce, log_loss, rtol=1e-12, atol=1e-12)


@pytest.mark.slow  # trains
def test_labels_and_targets_equal_torchvision(paper, cat_inputs, trained):
    session, _ = trained  # labels and targets are fixed at the start: anchors and boxes never change
    images, features, scale = cat_inputs
    rpn = paper.model.rpn
    anchors = rpn.anchor_generator(images, list(features.values()))
    gt = torch.tensor([CAT_BOX]) * scale
    labels, matched = rpn.assign_targets_to_anchors(anchors, [{"boxes": gt}])
    targets = rpn.box_coder.encode(matched, anchors)
    assert torch.equal(session.anchors, anchors[0])
    assert torch.equal(session.labels[0], labels[0])
    assert torch.equal(session.regression_targets[0], targets[0])
    again = TrainingSession(paper, CAT, [CAT_BOX], before=session.before)  # an app's cached trace reused
    assert torch.equal(again.labels[0], labels[0]) and again.before is session.before
    summary = session.label_summary()
    assert summary.positive == int((labels[0] == 1).sum()) > 0
    assert summary.negative == int((labels[0] == 0).sum())
    assert summary.positive + summary.negative + summary.ignored == labels[0].numel()
    assert summary.positive_by_iou + summary.positive_best_match == summary.positive


@pytest.mark.slow  # trains
def test_one_step_equals_compute_loss_on_the_same_minibatch(paper, device):
    """On the CPU and on CUDA: the step's losses are ``compute_loss`` on the same device and mini-batch."""
    paper = on_device(paper, device)
    session = TrainingSession(paper, CAT, [CAT_BOX], TrainConfig(seed=3))
    assert session.device == device and all(f.device == device for f in session.features)
    assert session.anchors.device == session.labels[0].device == device
    images, features, scale = rpn_inputs(paper, CAT)
    rpn = paper.model.rpn  # the shared model: its head is the session's head before step 1
    feats = list(features.values())
    objectness, deltas = rpn.head(feats)
    flat_objectness, flat_deltas = concat_box_prediction_layers(objectness, deltas)
    anchors = rpn.anchor_generator(images, feats)
    gt = (torch.tensor([CAT_BOX]) * scale).to(device)
    labels, matched = rpn.assign_targets_to_anchors(anchors, [{"boxes": gt}])
    targets = rpn.box_coder.encode(matched, anchors)
    torch.manual_seed(session.sampling_seed(1))
    objectness_loss, box_loss = rpn.compute_loss(flat_objectness, flat_deltas, labels, targets)
    torch.manual_seed(session.sampling_seed(1))
    positive_mask, negative_mask = det_utils.BalancedPositiveNegativeSampler(256, 0.5)(labels)
    labels, positive_mask, negative_mask = labels[0].cpu(), positive_mask[0].cpu(), negative_mask[0].cpu()

    rng_before = torch.get_rng_state()
    step = session.step()
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's random state is untouched
    assert step.step == 1
    assert step.objectness_loss == objectness_loss.item()
    assert step.box_loss == box_loss.item()
    assert step.total_loss == pytest.approx(objectness_loss.item() + box_loss.item(), rel=1e-6)
    assert torch.equal(step.positive, torch.where(positive_mask)[0])
    assert torch.equal(step.negative, torch.where(negative_mask)[0])
    assert step.positive.numel() + step.negative.numel() == 256 and step.positive.numel() <= 128
    assert bool((labels[step.positive] == 1).all()) and bool((labels[step.negative] == 0).all())
    # the head moved, the shared one did not
    assert not torch.equal(session.head.conv[0].weight, rpn.head.conv[0].weight)


@pytest.mark.slow  # trains
def test_training_100_steps_learns_the_box(trained):
    session, _ = trained
    total = session.losses()["total"]
    assert len(total) == 100
    last10 = sum(total[-10:]) / 10
    assert total[0] >= 2 * total[-1] and total[0] >= 2 * last10, (total[0], total[-1], last10)
    (before,) = session.recall_before
    (after,) = session.recall_now()
    assert before < 0.7 < after, (before, after)
    info = session.weights_info()
    assert info.kind == "trained here" and "trained on 1 photo for 100 steps" in info.label


@pytest.mark.slow  # trains
def test_explain_anchor_matches_the_flat_outputs(trained):
    session, _ = trained
    index = session.best_anchor(0)
    story = session.explain_anchor(index)
    with torch.no_grad():
        logits, deltas = session.forward_head()
    assert story.label == 1 and story.box_index == 0  # a box's best anchor is always positive
    assert story.iou == pytest.approx(session.label_summary().best_anchor_iou[0])
    assert story.target == tuple(session.regression_targets[0][index].tolist())
    assert story.predicted == tuple(deltas[index].tolist())
    assert story.logit == logits[index, 0].item()
    assert story.softmax == pytest.approx(story.probability, abs=1e-6)
    assert story.scores[1] - story.scores[0] == pytest.approx(story.logit, abs=1e-4)
    positives, negatives = session.minibatch_boxes()
    assert torch.equal(positives, session.anchors[session.history[-1].positive])
    assert negatives.shape == (256 - positives.shape[0], 4)


@pytest.mark.slow  # trains
def test_trace_of_trained_model_equals_its_own_rpn(paper, trained, cat_inputs):
    session, _ = trained
    model = session.trained_model()
    assert model.weights.kind == "trained here" and model.is_trained
    traced = trace(model, CAT)
    images, features, _ = cat_inputs  # the trained model shares the paper model's transform and backbone
    with torch.inference_mode():
        boxes, _ = model.model.rpn(images, features)
    assert torch.equal(traced.result.boxes, boxes[0].cpu())
    live = session.live()  # the cheap redraw path gives the same proposals as a full trace
    assert torch.equal(live.result.boxes, traced.result.boxes)
    assert live.best_iou == best_iou_top_k(traced, [CAT_BOX])
    fewer = traced.refilter(nms_iou=0.5, post_nms_top_n=50)
    assert 0 < fewer.boxes.shape[0] <= 50
    assert model.model.backbone is session.start.model.backbone  # shared, not copied
    # a snapshot: further training does not change it (a session of its own: the module's
    # ``trained`` session stays at its 100 steps, whatever order the tests run in)
    other = TrainingSession(paper, CAT, [CAT_BOX], TrainConfig(seed=0), before=session.before)
    other.step()
    snapshot = other.trained_model()
    weight = snapshot.model.rpn.head.conv[0].weight.clone()
    other.step()
    assert torch.equal(snapshot.model.rpn.head.conv[0].weight, weight)
    assert not torch.equal(other.head.conv[0].weight, weight)  # the session itself did move


@pytest.mark.slow  # trains
def test_top_on_another_photo_equals_a_full_trace(paper, trained):
    """The app's "photo it never saw": the head on the starting model's features there gives what a whole
    trace of the trained model gives (the backbone is shared and frozen), without a backbone pass."""
    session, _ = trained
    start_trace = trace(paper, COFFEE)
    mine = session.top_on(start_trace)
    full = trace(session.current_model(), COFFEE)
    assert torch.equal(mine.original, full.to_original(full.result.boxes[:10]))
    assert torch.equal(mine.working, full.to_working(full.result.boxes[:10]))
    assert torch.equal(mine.scores, full.result.scores[:10])
    assert mine.best_iou([CUP_BOX]) == best_iou_top_k(full, [CUP_BOX])
    with pytest.raises(ValueError, match="starting model"):
        session.top_on(full)
    assert all(p.grad is None for p in session.head.parameters())  # no gradients kept between steps


@pytest.mark.slow  # trains
def test_shared_models_stay_bit_identical(paper, trained, untrained):
    session, before = trained
    assert_bit_identical(before, paper.model)
    assert not any(p.requires_grad for p in paper.model.parameters())
    # the loaded-COCO-head path, on conftest's shared COCO-layout model (random weights), 2 steps
    coco = untrained
    coco_before = state_copy(coco.model)
    fine = TrainingSession(coco, COFFEE, [CUP_BOX])
    fine.run(2)
    assert_bit_identical(coco_before, coco.model)
    assert not torch.equal(fine.head.conv[0][0].weight, coco.model.rpn.head.conv[0][0].weight)
    label = fine.weights_info().label
    assert "untrained" in label and "2 steps" in label  # never presented as trained weights


@pytest.mark.slow  # trains
def test_steps_from_two_threads_keep_each_minibatch_with_its_step(paper, trained):
    """An app may step one session from two script threads at once; each step stays whole."""
    session = TrainingSession(paper, CAT, [CAT_BOX], TrainConfig(seed=5), before=trained[0].before)
    workers = [threading.Thread(target=session.run, args=(6,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [r.step for r in session.history] == list(range(1, 13))
    sampler = det_utils.BalancedPositiveNegativeSampler(256, 0.5)
    for result in session.history:  # the recorded mini-batch is the one drawn for that step's seed
        torch.manual_seed(session.sampling_seed(result.step))
        positive, negative = sampler(session.labels)
        assert torch.equal(result.positive, torch.where(positive[0])[0])
        assert torch.equal(result.negative, torch.where(negative[0])[0])


def test_copy_for_training_shares_all_but_the_rpn(paper):
    clone = copy_for_training(paper.model)
    assert clone.backbone is paper.model.backbone and clone.transform is paper.model.transform
    assert clone.rpn is not paper.model.rpn
    assert clone.rpn.head.conv[0].weight.data_ptr() != paper.model.rpn.head.conv[0].weight.data_ptr()


def test_check_boxes():
    assert check_boxes([(-5, 0, 500, 300)], (451, 300)).tolist() == [[0, 0, 451, 300]]
    for bad in ([], [(1, 2, 3)], [(10, 10, 5, 5)], [(500, 0, 600, 10)]):
        with pytest.raises(ValueError):
            check_boxes(bad, (451, 300))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "rpn_viz", "learn", *args], cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=120,
    )


@pytest.mark.slow  # trains
def test_cli_writes_the_json_contract(paper, tmp_path):
    out = tmp_path / "learn.json"
    done = run_cli(str(CAT), "--box", "0,0,400,300", "--steps", "3", "--seed", "1", "--json", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert [row["step"] for row in doc["loss"]] == [1, 2, 3]
    for row in doc["loss"]:
        assert row["total"] == pytest.approx(row["objectness"] + row["box"], rel=1e-6)
        assert row["positives"] + row["negatives"] == 256
    assert doc["top_k"] == 10 and doc["boxes"] == [[0, 0, 400, 300]]
    for when in ("before", "after"):
        assert len(doc["best_iou_top_k"][when]) == 1 and 0.0 <= doc["best_iou_top_k"][when][0] <= 1.0
    assert doc["image_size"] == [451, 300] and doc["steps"] == 3
    assert doc["start"]["weights"]["kind"] == "untrained" and doc["weights"]["kind"] == "trained here"
    assert doc["config"]["seed"] == 1 and doc["config"]["optimizer"] == "sgd"


@pytest.mark.parametrize(
    "args",
    [
        ("--box", "1,2,3", "--json", "x.json"),  # three numbers
        ("--box", "300,10,100,50", "--json", "x.json"),  # empty box
        ("--box", "0,0,10,10", "--lr", "-1", "--json", "x.json"),
        ("--box", "0,0,10,10", "--steps", "-2", "--json", "x.json"),
        ("--box", "0,0,10,10", "--json", "x.json", "--weights-dir", "/nonexistent", "--no-download"),
    ],
)
def test_cli_errors_are_one_line(args, tmp_path, monkeypatch, capsys):
    """In-process (the subprocess path is covered above): exit status 2, one line, no traceback."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached copy to fall back on
    monkeypatch.chdir(tmp_path)
    try:
        status = learn_main([str(CAT), *args])
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    assert status == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rpn-viz learn: error:"), lines
    assert not (tmp_path / "x.json").exists()
