"""``rpn-viz fetch`` (issue 23, part 5): every weights file the app can use, prepared for a class without a network.

Served from a file server on 127.0.0.1 (tests/loopback.py), as the download tests do: the four COCO
entries of the registry and the offline model's ImageNet MobileNetV2 are patched to files the tests
make (a small random checkpoint each; for the default model, the calibrated random Faster R-CNN
checkpoint of ``rpn_viz.testing``, so the app can run it afterwards). The torch hub cache is empty
and private, and no weights folder is configured. Checked: the list (sizes, states), downloads with
the progress line, "already here" on a second run with no new transfer, one line per error (offline,
disk full, wrong hash) with nothing half-written under a real name, and the classroom: after a fetch,
offline, the app opens on the COCO model.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from loopback import FileServer
from rpn_viz.commands import cli, commandline, fetch
from rpn_viz.model import download, paper
from rpn_viz.model.models import DEFAULT_MODEL, MODELS
from rpn_viz.model.weights import OfficialFile

ROOT = Path(__file__).resolve().parent.parent
COCO_NAMES = list(MODELS)
ALL_NAMES = [*COCO_NAMES, fetch.PAPER_RPN]


def small_checkpoint(seed: int) -> bytes:
    """A few hundred kB of random tensors: a file like a checkpoint, different for each seed."""
    buffer = io.BytesIO()
    torch.save({"weight": torch.randn(60_000, generator=torch.Generator().manual_seed(seed))}, buffer)
    return buffer.getvalue()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server():
    with FileServer() as running:
        yield running


@pytest.fixture()
def served(no_weights_folder, server, monkeypatch, scrambled_checkpoint) -> dict[str, bytes]:
    """Every file of the list served on the loopback (the registry points there); model -> its bytes."""
    contents: dict[str, bytes] = {}
    for seed, name in enumerate(ALL_NAMES):
        data = scrambled_checkpoint.read_bytes() if name == DEFAULT_MODEL else small_checkpoint(seed)
        original = paper.MOBILENET_V2_IMAGENET if name == fetch.PAPER_RPN else MODELS[name].official
        path = f"/models/{original.filename}"
        server.files[path] = data
        official = OfficialFile(server.url(path), hashlib.sha256(data).hexdigest())
        if name == fetch.PAPER_RPN:
            monkeypatch.setattr(paper, "MOBILENET_V2_IMAGENET", official)
        else:
            monkeypatch.setitem(MODELS, name, replace(MODELS[name], official=official))
        contents[name] = data
    yield contents
    st.cache_resource.clear()  # the app test loads a model other tests must not find under its key


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# --------------------------------------------------------------------------------------------------
# the pure parts: the list and its states
# --------------------------------------------------------------------------------------------------


def test_the_list_is_every_coco_model_and_the_offline_models_backbone() -> None:
    listed = fetch.files()
    assert [f.model for f in listed] == ALL_NAMES == list(commandline.MODEL_NAMES)
    assert [f.official for f in listed] == [*(s.official for s in MODELS.values()), paper.MOBILENET_V2_IMAGENET]
    sizes = {f.model: f.published_mb for f in listed}  # torchvision's published sizes, shown before a download
    assert sizes["mobilenet_v3_large_fpn"] == pytest.approx(74.2, abs=0.1)
    assert sizes["paper_rpn"] == pytest.approx(13.6, abs=0.1) and all(s and s > 10 for s in sizes.values())
    assert [f.model for f in fetch.selected(listed, [], False)] == list(fetch.DEFAULT_SELECTION)
    assert [f.model for f in fetch.selected(listed, [], True)] == ALL_NAMES
    assert [f.model for f in fetch.selected(listed, ["resnet50_fpn", "paper_rpn"], False)] == ["resnet50_fpn", "paper_rpn"]


def test_list_shows_each_file_its_size_and_whether_it_is_present_and_verified(served, no_weights_folder, capsys) -> None:
    hub = no_weights_folder
    hub.mkdir(parents=True)
    good, bad = MODELS["resnet50_fpn"].official, MODELS["resnet50_fpn_v2"].official
    (hub / good.filename).write_bytes(served["resnet50_fpn"])
    (hub / bad.filename).write_bytes(served["resnet50_fpn_v2"][:-10])  # truncated
    assert cli.console(["fetch", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in out[1:-1]}
    assert out[0].split() == ["model", "file", "size", "status", "where"]
    assert rows["resnet50_fpn"][1:] == [good.filename, f"{len(served['resnet50_fpn']) / 1e6:.1f}", "MB", "verified", str(hub)]
    assert rows["resnet50_fpn_v2"][1:] == [bad.filename, f"{(len(served['resnet50_fpn_v2']) - 10) / 1e6:.1f}", "MB",
                                           "wrong", "hash", str(hub)]
    assert rows["mobilenet_v3_large_fpn"][2:] == ["~74.2", "MB", "missing"]  # the published size, not here yet
    assert out[-1] == f"1 of 5 files present and verified; downloads go to {hub}"
    assert names_in(hub) == sorted([good.filename, bad.filename])  # --list downloads nothing, deletes nothing


# --------------------------------------------------------------------------------------------------
# downloading: progress, verified, already here
# --------------------------------------------------------------------------------------------------


def test_fetch_all_downloads_every_file_with_progress_then_says_they_are_here(served, server, no_weights_folder, capfd) -> None:
    hub = no_weights_folder
    assert cli.console(["fetch", "--all"]) == 0
    out, err = capfd.readouterr()
    files = fetch.files()
    assert names_in(hub) == sorted(f.filename for f in files)  # every file, and no .partial left
    for f in files:
        data = served[f.model]
        assert (hub / f.filename).read_bytes() == data
        total = f"{len(data) / 1e6:.1f}"
        assert f"Downloading {f.filename}: {total} / {total} MB · " in err  # the progress line
        assert f"{f.model}: {f.filename} downloaded, verified ({total} MB): {hub / f.filename}" in out
        assert server.gets(f"/models/{Path(f.official.url).name}") == 1
    assert out.splitlines()[-1] == "5 of 5 files here and verified: the app needs no network for them."
    assert not error_lines(err) and "Traceback" not in err

    assert cli.console(["fetch", "--all"]) == 0  # again: everything is already here, nothing is transferred
    out, err = capfd.readouterr()
    assert all(server.gets(f"/models/{Path(f.official.url).name}") == 1 for f in files)
    assert "Downloading" not in err
    for f in files:
        assert f"{f.model}: {f.filename} is already here, verified ({len(served[f.model]) / 1e6:.1f} MB)" in out


def test_fetch_with_no_model_gets_what_the_app_opens_on_and_a_model_gets_its_file(served, no_weights_folder, capsys) -> None:
    hub = no_weights_folder
    assert cli.console(["fetch"]) == 0
    assert names_in(hub) == sorted([MODELS[DEFAULT_MODEL].official.filename, paper.MOBILENET_V2_IMAGENET.filename])
    assert cli.console(["fetch", "resnet50_fpn"]) == 0
    assert MODELS["resnet50_fpn"].official.filename in names_in(hub) and len(names_in(hub)) == 3


def test_a_file_in_the_weights_folder_counts_as_here(served, no_weights_folder, monkeypatch, tmp_path, server, capsys) -> None:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / paper.MOBILENET_V2_IMAGENET.filename).write_bytes(served[fetch.PAPER_RPN])
    monkeypatch.setenv("RPN_VIZ_WEIGHTS_DIR", str(folder))
    assert cli.console(["fetch", "paper_rpn"]) == 0
    assert f"is already here, verified ({len(served['paper_rpn']) / 1e6:.1f} MB): {folder}/" in capsys.readouterr().out
    assert names_in(no_weights_folder) == [] and server.gets(f"/models/{paper.MOBILENET_V2_IMAGENET.filename}") == 0


# --------------------------------------------------------------------------------------------------
# each error in one line; nothing half-written under a real name
# --------------------------------------------------------------------------------------------------


def test_offline_each_file_fails_in_one_line_and_nothing_is_written(served, no_weights_folder, monkeypatch, capfd) -> None:
    port = closed_port()
    for name in COCO_NAMES:
        official = MODELS[name].official
        monkeypatch.setitem(MODELS, name, replace(MODELS[name], official=replace(
            official, url=f"http://127.0.0.1:{port}/models/{official.filename}")))
    assert cli.console(["fetch", "--all"]) == commandline.EXIT_BAD_INPUT
    out, err = capfd.readouterr()
    lines = error_lines(err)
    assert [line for line in err.splitlines() if line and not line.startswith("Downloading ")] == lines
    assert len(lines) == 4  # one line for each file that could not be had, nothing else but progress
    for line, name in zip(lines, COCO_NAMES):
        assert line.startswith(f"rpn-viz fetch: error: {MODELS[name].official.filename}: offline or unreachable: URLError: ")
    assert names_in(no_weights_folder) == [paper.MOBILENET_V2_IMAGENET.filename]  # the one that could be had
    assert out.splitlines()[-1].startswith("1 of 5 files here and verified; 4 failed")


def test_a_full_disk_leaves_nothing_under_a_real_name(served, no_weights_folder, monkeypatch, capfd) -> None:
    real_fdopen = os.fdopen

    class FullDisk(io.RawIOBase):
        def __init__(self, fd: int) -> None:
            self.handle = real_fdopen(fd, "wb")
            self.room = 100_000  # then the disk is full

        def write(self, chunk) -> int:
            if len(chunk) > self.room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(chunk)
            return self.handle.write(chunk)

        def close(self) -> None:
            self.handle.close()
            super().close()

    monkeypatch.setattr(download.os, "fdopen", lambda fd, mode: FullDisk(fd))
    assert cli.console(["fetch", "paper_rpn"]) == commandline.EXIT_BAD_INPUT
    (line,) = error_lines(capfd.readouterr().err)
    assert line == (f"rpn-viz fetch: error: {paper.MOBILENET_V2_IMAGENET.filename}: cannot write to "
                    f"{no_weights_folder}: No space left on device")
    assert names_in(no_weights_folder) == []  # the .partial file is gone too


def test_wrong_bytes_are_refused_and_a_wrong_file_already_here_is_named(served, server, no_weights_folder, capfd) -> None:
    wanted = MODELS["resnet50_fpn"].official
    server.files[f"/models/{wanted.filename}"] = served["resnet50_fpn"][:-1] + b"!"  # the server has other bytes
    assert cli.console(["fetch", "resnet50_fpn"]) == commandline.EXIT_BAD_INPUT
    (line,) = error_lines(capfd.readouterr().err)
    assert line.startswith(f"rpn-viz fetch: error: {wanted.filename}: the downloaded bytes are not the official file")
    assert line.endswith("and were deleted")
    assert names_in(no_weights_folder) == []

    no_weights_folder.mkdir(parents=True, exist_ok=True)
    (no_weights_folder / wanted.filename).write_bytes(b"not a checkpoint")  # a broken file under the real name
    assert cli.console(["fetch", "resnet50_fpn"]) == commandline.EXIT_BAD_INPUT
    (line,) = error_lines(capfd.readouterr().err)
    assert line.startswith(f"rpn-viz fetch: error: {wanted.filename}: {no_weights_folder / wanted.filename} is not "
                           f"the official {wanted.filename} (sha256 ")
    assert "Delete it and download it again" in line
    assert server.gets(f"/models/{wanted.filename}") == 1  # a file the user put there is not overwritten


# --------------------------------------------------------------------------------------------------
# the classroom: fetched at home, the app opens on the COCO model without a network
# --------------------------------------------------------------------------------------------------


def test_after_a_fetch_the_app_opens_on_the_coco_model_offline(served, server, no_weights_folder, no_internet) -> None:
    assert cli.console(["fetch"]) == 0
    server.stop()  # the classroom: no network at all
    for name in COCO_NAMES:  # and the real addresses again, which conftest keeps unreachable
        official = MODELS[name].official
        MODELS[name] = replace(MODELS[name], official=replace(official, url=f"https://download.invalid/{official.filename}"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.session_state["step"] = "proposals"
    at.run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="model").value == f"official:{DEFAULT_MODEL}"
    assert "official COCO weights" in at.markdown[1].value
    assert not any("could not be downloaded" in w.value for w in at.warning)
    assert not at.get("progress") and no_internet == []  # nothing was downloaded, nothing was tried
