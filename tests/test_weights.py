"""The weights chain (issue 8, "The model"): found, verified, loaded safely — never a silent fallback.

Every file is made here: a tiny "official" file whose sha256 the tests put into an
:class:`OfficialFile`, a full-size Faster R-CNN state dict with re-drawn weights written under the
real official name (with the registry's hash monkeypatched to its sha256), a 3-class checkpoint made
the way torchvision's fine-tuning tutorial makes one, and broken files of every kind. Nothing here
touches the network: downloads fail as offline (tests/test_download.py downloads from a loopback
server). The test with the real COCO file runs only when it is on this machine and says so when it
is skipped.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from dataclasses import replace
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from PIL import Image
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.transforms.functional import pil_to_tensor

import rpn_viz
from rpn_viz.model import download as dmod
from rpn_viz.model.download import find_official
from rpn_viz.model.models import DEFAULT_MODEL, MODELS, available_models, load_model
from rpn_viz.model.weights import (
    WEIGHTS_DIR_ENV,
    OfficialFile,
    WeightsError,
    candidate_paths,
    hub_checkpoint_dir,
    save_uploaded,
    sha256_of,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC = MODELS[DEFAULT_MODEL]
OFFICIAL_NAME = SPEC.official.filename  # fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth


# --------------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def varied_file(scrambled_checkpoint) -> Path:
    """A full-size state dict of the default model's layout, saved with torch.save (~78 MB): the session's one."""
    return scrambled_checkpoint


@pytest.fixture()
def isolated(monkeypatch, no_weights_folder) -> dict:
    """No weights folder configured, an empty hub cache under tmp, and no network at all.

    Returns a dict: ``hub`` (the checkpoints folder) and ``downloads`` (URLs anything tried to fetch).
    """
    downloads: list[str] = []

    def offline(url, *args, **kwargs):
        downloads.append(url)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(dmod, "open_url", offline)
    return {"hub": no_weights_folder, "downloads": downloads}


@pytest.fixture()
def tiny(tmp_path) -> tuple[OfficialFile, bytes]:
    """A small real checkpoint and an OfficialFile whose sha256 is that file's."""
    path = tmp_path / "tiny_source.pth"
    torch.save({"weight": torch.arange(6.0).reshape(2, 3)}, path)
    data = path.read_bytes()
    return OfficialFile("https://download.example.invalid/models/tiny-0123abcd.pth", sha256_bytes(data)), data


def put(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


@pytest.fixture()
def official_is(monkeypatch):
    """``official_is(data)``: make the registry's official hash that of ``data`` (the real name and URL stay)."""

    def patch(data: bytes) -> OfficialFile:
        official = OfficialFile(SPEC.official.url, sha256_bytes(data))
        monkeypatch.setitem(MODELS, DEFAULT_MODEL, replace(SPEC, official=official))
        return official

    return patch


@pytest.fixture()
def load_calls(monkeypatch) -> list[dict]:
    """Every torch.load call's keyword arguments."""
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


def assert_weights_equal(loaded: rpn_viz.LoadedModel, saved: dict[str, torch.Tensor]) -> None:
    state = loaded.model.state_dict()
    compared = 0
    for key, value in saved.items():
        if key.endswith("num_batches_tracked"):
            continue  # FrozenBatchNorm2d drops it on load, as torchvision's does
        assert torch.equal(state[key].cpu(), value), key
        compared += 1
    assert compared == len(state)  # every tensor of the model came from the file


# --------------------------------------------------------------------------------------------------
# where files are looked for
# --------------------------------------------------------------------------------------------------


def test_candidates_explicit_folder_then_env_then_hub(isolated, tiny, tmp_path, monkeypatch) -> None:
    official, _ = tiny
    hub = isolated["hub"]
    assert hub_checkpoint_dir() == hub
    assert candidate_paths(official) == [hub / official.filename]
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "from_env"))
    assert candidate_paths(official) == [tmp_path / "from_env" / official.filename, hub / official.filename]
    # an explicit folder (--weights-dir) beats the environment variable
    assert candidate_paths(official, tmp_path / "explicit") == [
        tmp_path / "explicit" / official.filename,
        hub / official.filename,
    ]


def test_explicit_folder_is_found_before_the_hub_cache(isolated, tiny, tmp_path) -> None:
    official, data = tiny
    in_hub = put(isolated["hub"], official.filename, data)
    in_folder = put(tmp_path / "weights", official.filename, data)
    assert find_official(official, tmp_path / "weights", allow_download=False) == in_folder
    in_folder.unlink()
    assert find_official(official, tmp_path / "weights", allow_download=False) == in_hub
    assert isolated["downloads"] == []


def test_environment_folder_is_used(isolated, tiny, tmp_path, monkeypatch) -> None:
    official, data = tiny
    put(isolated["hub"], official.filename, data)
    in_env = put(tmp_path / "shared_weights", official.filename, data)
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "shared_weights"))
    assert find_official(official, allow_download=False) == in_env


def test_shared_folder_beside_the_checkout_is_the_default(isolated, tiny, tmp_path, monkeypatch) -> None:
    """A fresh clone beside ``shared/weights`` finds its files with no setting; a set folder wins."""
    official, data = tiny
    shared = tmp_path / "shared" / "weights"
    monkeypatch.setattr("rpn_viz.model.weights.shared_weights_dir", lambda: shared)
    assert candidate_paths(official) == [shared / official.filename, isolated["hub"] / official.filename]
    in_shared = put(shared, official.filename, data)
    assert find_official(official, allow_download=False) == in_shared
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "elsewhere"))
    assert candidate_paths(official)[0] == tmp_path / "elsewhere" / official.filename
    assert isolated["downloads"] == []


def test_shared_folder_is_found_beside_this_checkout() -> None:
    """``rpn_viz.io.paths.shared_weights_dir`` names ``../shared/weights`` of this checkout, when it exists."""
    from rpn_viz.io.paths import shared_weights_dir

    expected = Path(__file__).resolve().parent.parent.parent / "shared" / "weights"
    assert shared_weights_dir() == (expected if expected.is_dir() else None)


def test_hub_cache_follows_torch_home_and_set_dir(isolated, tiny, tmp_path, monkeypatch) -> None:
    official, data = tiny
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "other_home"))
    assert hub_checkpoint_dir() == tmp_path / "other_home" / "hub" / "checkpoints"
    torch.hub.set_dir(str(tmp_path / "set_dir_hub"))  # the fixture's monkeypatch restores _hub_dir
    assert hub_checkpoint_dir() == tmp_path / "set_dir_hub" / "checkpoints"
    cached = put(tmp_path / "set_dir_hub" / "checkpoints", official.filename, data)
    assert find_official(official, allow_download=False) == cached


def test_available_models_lists_a_model_when_its_file_is_there(isolated, tmp_path) -> None:
    assert SPEC not in available_models(tmp_path / "weights")
    put(tmp_path / "weights", OFFICIAL_NAME, b"anything")  # presence only; integrity is checked on load
    assert SPEC in available_models(tmp_path / "weights")


# --------------------------------------------------------------------------------------------------
# verification: wrong hash, corrupt, truncated
# --------------------------------------------------------------------------------------------------


def test_wrong_hash_is_an_error_not_a_reason_to_look_further(isolated, tiny, tmp_path) -> None:
    official, data = tiny
    put(isolated["hub"], official.filename, data)  # a good copy further down the chain
    bad = put(tmp_path / "weights", official.filename, data[:-1] + bytes([data[-1] ^ 0xFF]))
    with pytest.raises(WeightsError) as info:
        find_official(official, tmp_path / "weights", allow_download=False)
    message = str(info.value)
    assert str(bad) in message and "not the official" in message and official.url in message
    assert sha256_bytes(bad.read_bytes())[:16] in message and official.sha256[:16] in message
    assert "\n" not in message


def test_fake_file_under_the_official_name_is_refused_by_load_model(isolated, tmp_path, load_calls) -> None:
    fake = put(tmp_path / "weights", OFFICIAL_NAME, b"definitely not the COCO weights" * 1000)
    with pytest.raises(WeightsError) as info:
        load_model(weights_dir=tmp_path / "weights", allow_download=False)
    assert str(fake) in str(info.value) and "not the official" in str(info.value)
    assert SPEC.official.url in str(info.value)
    assert load_calls == []  # the hash is checked before anything is unpickled


def test_truncated_official_download_is_refused(isolated, varied_file, tmp_path) -> None:
    """An interrupted download: the real official hash, half the bytes."""
    data = varied_file.read_bytes()
    put(isolated["hub"], OFFICIAL_NAME, data[: len(data) // 2])
    with pytest.raises(WeightsError, match="corrupt, truncated"):
        load_model(allow_download=False)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_file_with_matching_hash_that_is_not_a_checkpoint(isolated, official_is, varied_file, tmp_path, damage) -> None:
    """Past the hash check (hash patched to these bytes), unreadable bytes still give one clear line."""
    full = varied_file.read_bytes()
    data = {"garbage": b"\x00\x01 not a zip, not a pickle" * 50, "truncated": full[: len(full) // 3], "empty": b""}[damage]
    official_is(data)
    put(tmp_path / "weights", OFFICIAL_NAME, data)
    with pytest.raises(WeightsError) as info:
        load_model(weights_dir=tmp_path / "weights", allow_download=False)
    assert f"Cannot read {OFFICIAL_NAME}" in str(info.value) and "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# loading: official chain (patched hash), custom checkpoints, weights_only
# --------------------------------------------------------------------------------------------------


def test_official_chain_loads_verified_file_with_weights_only(isolated, official_is, varied_file, tmp_path, load_calls) -> None:
    data = varied_file.read_bytes()
    official = official_is(data)
    path = put(tmp_path / "weights", OFFICIAL_NAME, data)
    loaded = load_model(weights_dir=tmp_path / "weights", allow_download=False, device="cpu")
    assert loaded.weights.kind == "official" and loaded.weights.path == str(path)
    assert loaded.weights.sha256 == official.sha256 == sha256_of(path)
    assert loaded.num_classes == 91 and not loaded.model.training
    assert [c.get("weights_only") for c in load_calls] == [True]
    assert_weights_equal(loaded, torch.load(varied_file, weights_only=True))
    assert isolated["downloads"] == []


def tutorial_checkpoint(path: Path, num_classes: int = 3, wrap: str | None = None) -> dict[str, torch.Tensor]:
    """As torchvision's detection fine-tuning tutorial does it: new box predictor, save state_dict.

    (The tutorial starts from weights="DEFAULT"; this machine has no weights, so the starting point
    is random — the file's layout is the same.)
    """
    torch.manual_seed(3)
    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None)
    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
    state = model.state_dict()
    torch.save({wrap: state} if wrap else state, path)
    return state


@pytest.mark.parametrize("wrap", [None, "model", "state_dict"])
def test_custom_checkpoint_from_the_finetuning_tutorial(isolated, tmp_path, load_calls, wrap) -> None:
    path = tmp_path / "my_3_class_detector.pth"
    saved = tutorial_checkpoint(path, 3, wrap)
    loaded = load_model(checkpoint=path, device="cpu")
    assert loaded.num_classes == 3
    assert loaded.model.roi_heads.box_predictor.cls_score.out_features == 3
    assert loaded.model.roi_heads.box_predictor.bbox_pred.out_features == 12
    digest = sha256_bytes(path.read_bytes())
    assert loaded.weights.kind == "custom" and loaded.weights.sha256 == digest
    assert loaded.weights.path == str(path)
    assert digest[:12] in loaded.weights.label and path.name in loaded.weights.label
    assert loaded.is_trained
    assert [c.get("weights_only") for c in load_calls] == [True]
    assert_weights_equal(loaded, saved)
    assert isolated["downloads"] == []  # a checkpoint never needs the official file


@pytest.mark.slow
def test_custom_checkpoint_gives_the_proposals_of_its_weights(isolated, varied_file) -> None:
    """The loaded checkpoint is the network torchvision builds from the same state dict."""
    loaded = load_model(checkpoint=varied_file, device="cpu")
    reference = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None)
    reference.load_state_dict(torch.load(varied_file, weights_only=True))
    reference.eval()
    with Image.open(ROOT / "assets" / "cat.jpg") as image:
        pixels = pil_to_tensor(image.convert("RGB")).float() / 255
    with torch.inference_mode():
        ours = loaded.model.rpn(*_rpn_inputs(loaded.model, pixels))[0][0]
        theirs = reference.rpn(*_rpn_inputs(reference, pixels))[0][0]
    # FrozenBatchNorm2d (our trained layout) and BatchNorm2d round differently: equal to ~1e-4 px
    torch.testing.assert_close(ours[:50], theirs[:50], atol=1e-2, rtol=1e-4)


def _rpn_inputs(model, pixels):
    images, _ = model.transform([pixels])
    return images, model.backbone(images.tensors)


class _Payload:
    """Unpickling this would create a file: what a malicious checkpoint does with weights_only=False."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_checkpoint_with_code_in_it_is_refused_without_running_it(isolated, tmp_path) -> None:
    marker = tmp_path / "payload_ran"
    path = tmp_path / "innocent_looking.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "extra": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="Cannot read innocent_looking.pth"):
        load_model(checkpoint=path, device="cpu")
    assert not marker.exists()


def test_broken_custom_checkpoints_give_one_clear_line(isolated, varied_file, tmp_path) -> None:
    data = varied_file.read_bytes()
    cases = {
        "truncated.pth": (data[: len(data) // 2], "Cannot read truncated.pth"),
        "corrupt.pth": (b"PK\x03\x04 this is not really a zip" * 10, "Cannot read corrupt.pth"),
        "empty.pth": (b"", "Cannot read empty.pth"),
    }
    for name, (content, expected) in cases.items():
        put(tmp_path, name, content)
    torch.save([1, 2, 3], tmp_path / "list.pth")
    cases["list.pth"] = (None, "list.pth is not a state dict")
    torch.save({"backbone.weight": torch.zeros(2)}, tmp_path / "other_model.pth")
    cases["other_model.pth"] = (None, "Not a torchvision Faster R-CNN state dict")
    partial = torch.load(varied_file, weights_only=True)
    del partial["rpn.head.conv.0.0.weight"]
    torch.save(partial, tmp_path / "partial.pth")
    cases["partial.pth"] = (None, "Checkpoint partial.pth does not fit this architecture")
    cases["missing.pth"] = (None, "does not exist")
    for name, (_, expected) in cases.items():
        with pytest.raises(WeightsError) as info:
            load_model(checkpoint=tmp_path / name, device="cpu")
        assert expected in str(info.value), (name, str(info.value))
        assert "\n" not in str(info.value)


def test_untrained_is_labelled_and_reproducible(isolated) -> None:
    a = load_model(untrained=True, seed=7, device="cpu")
    b = load_model(untrained=True, seed=7, device="cpu")
    assert a.weights.kind == "untrained" and a.weights.seed == 7 and "seed 7" in a.weights.label
    assert not a.is_trained
    for (key, x), (_, y) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(x, y), key
    assert isolated["downloads"] == []


# --------------------------------------------------------------------------------------------------
# downloads: offline, bad bytes, good bytes; never random weights
# --------------------------------------------------------------------------------------------------


def test_offline_download_failure_names_file_url_and_folder(isolated, monkeypatch) -> None:
    built = []
    original_builder = SPEC.builder

    def builder_spy(*args, **kwargs):
        built.append(kwargs)
        return original_builder(*args, **kwargs)

    monkeypatch.setitem(MODELS, DEFAULT_MODEL, replace(SPEC, builder=builder_spy))
    with pytest.raises(WeightsError) as info:
        load_model(device="cpu")  # downloads allowed; the network is not there
    message = str(info.value)
    assert OFFICIAL_NAME in message and SPEC.official.url in message
    assert f"{isolated['hub']}/" in message and "URLError" in message
    assert "\n" not in message
    assert isolated["downloads"] == [SPEC.official.url]
    assert built == []  # no network was built at all, random or otherwise
    assert not (isolated["hub"] / OFFICIAL_NAME).exists()


def test_offline_failure_with_a_weights_folder_points_to_that_folder(isolated, tmp_path) -> None:
    with pytest.raises(WeightsError) as info:
        load_model(weights_dir=tmp_path / "my_weights", device="cpu")
    assert f"{tmp_path / 'my_weights'}/" in str(info.value) and SPEC.official.url in str(info.value)


def test_injected_downloader_failure(isolated, tiny) -> None:
    official, _ = tiny

    def downloader(_official, progress=None):
        raise URLError("no route to host")

    with pytest.raises(WeightsError, match="URLError") as info:
        find_official(official, downloader=downloader)
    assert official.filename in str(info.value) and official.url in str(info.value)


def test_no_download_means_no_download(isolated, tiny) -> None:
    official, _ = tiny
    with pytest.raises(WeightsError) as info:
        find_official(official, allow_download=False)
    assert "download not allowed" in str(info.value) and official.url in str(info.value)
    assert f"{isolated['hub']}/" in str(info.value)
    assert isolated["downloads"] == []


def test_patching_the_module_level_download_function(isolated, tiny, monkeypatch) -> None:
    """``rpn_viz.model.download.download`` replaced: load_model and find_official use the replacement."""
    official, _ = tiny

    def offline(_official, progress=None):
        raise URLError("patched download: offline")

    monkeypatch.setattr(dmod, "download", offline)
    with pytest.raises(WeightsError, match="patched download: offline"):
        find_official(official)


# --------------------------------------------------------------------------------------------------
# the app's upload: only the exact official bytes are saved
# --------------------------------------------------------------------------------------------------


def test_save_uploaded_accepts_only_the_exact_bytes(isolated, tiny) -> None:
    official, data = tiny
    target = isolated["hub"] / official.filename
    for wrong in (data[:-1], data + b"\x00", b"", bytes([data[0] ^ 1]) + data[1:]):
        with pytest.raises(WeightsError, match="not tiny-0123abcd.pth"):
            save_uploaded(wrong, official)
        assert not target.exists()
    assert save_uploaded(data, official) == target
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == [official.filename]  # no .partial left
    assert find_official(official, allow_download=False) == target


def test_uploads_saved_at_once_each_write_their_own_file(isolated, tiny) -> None:
    """Several sessions (or server processes) saving the same upload together: each writes its own
    temporary file and renames complete bytes; none fails, nothing is left behind."""
    from concurrent.futures import ThreadPoolExecutor

    official, data = tiny
    with ThreadPoolExecutor(8) as pool:
        saved = list(pool.map(lambda _: save_uploaded(data, official), range(16)))
    target = isolated["hub"] / official.filename
    assert saved == [target] * 16 and target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == [official.filename]


# --------------------------------------------------------------------------------------------------
# the real COCO file, when it is here
# --------------------------------------------------------------------------------------------------


def test_official_coco_weights_equal_torchvisions_own_build(tmp_path, monkeypatch) -> None:
    present = [p for p in candidate_paths(SPEC.official) if p.is_file()]
    if not present:
        pytest.skip(
            f"official COCO weights {OFFICIAL_NAME} not on this machine (looked in "
            f"{', '.join(str(p.parent) for p in candidate_paths(SPEC.official))}); download it from "
            f"{SPEC.official.url} to run this test"
        )
    path = present[0]
    assert sha256_of(path) == SPEC.official.sha256
    loaded = load_model(DEFAULT_MODEL, allow_download=False, device="cpu")
    assert loaded.weights.kind == "official" and loaded.num_classes == 91

    # torchvision's own builder with its COCO_V1 weights, reading the same file from a private hub
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    os.symlink(path.resolve(), hub / "checkpoints" / OFFICIAL_NAME)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights

    reference = fasterrcnn_mobilenet_v3_large_fpn(weights=FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1).eval()
    ours = loaded.model.state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(ours[key], value), key
    t = rpn_viz.trace(loaded, ROOT / "assets" / "cat.jpg")
    assert t.result.scores.max() > 0.9  # a trained RPN is confident somewhere on a real photo
