"""Where the network runs: the device setting, its one-line errors, the one copy to the CPU, and a
trace that keeps nothing on the model's device (cpu always; cuda where this machine has it)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import rpn_viz
from rpn_viz.io.errors import describe_error
from rpn_viz.model.device import DEVICE_ENV, device_setting, resolve_device, tf32_allowed, to_cpu
from rpn_viz.testing import on_device
from ui.apptest import app_test


def test_the_setting_comes_from_the_option_then_the_environment_then_auto(monkeypatch) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert device_setting(None) == ("auto", "auto")
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert device_setting(None) == ("cpu", DEVICE_ENV)
    assert device_setting("cuda:1") == ("cuda:1", "--device")  # the command line wins
    assert resolve_device() == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "auto")
    assert resolve_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "CPU", "cuda:", "mps"])
def test_a_bad_setting_is_one_line_naming_the_choices(bad, monkeypatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, bad)
    with pytest.raises(ValueError) as caught:
        resolve_device()
    message = str(caught.value)
    assert "\n" not in message and DEVICE_ENV in message and "cpu, cuda, cuda:N or auto" in message
    assert describe_error(caught.value) == message  # shown as written, no "ValueError: " prefix
    with pytest.raises(ValueError, match="--device must be cpu, cuda, cuda:N or auto"):
        resolve_device(bad)


def test_cuda_that_is_not_there_is_one_line(monkeypatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the missing-GPU message cannot be shown")
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(ValueError, match="no CUDA device; use cpu or auto"):
        resolve_device()


def test_a_device_index_beyond_the_machine_is_refused(monkeypatch) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the index check runs on a GPU machine")
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_tf32_reports_pytorchs_defaults() -> None:
    assert tf32_allowed() == {"convolutions": bool(torch.backends.cudnn.allow_tf32),
                              "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}


def test_to_cpu_copies_every_tensor_once_with_its_values(device) -> None:
    values = [torch.arange(12, dtype=torch.float32).view(3, 4), torch.tensor([True, False]), torch.zeros(0, 4),
              torch.tensor(7, dtype=torch.int64), torch.linspace(0, 1, 5).view(5, 1).expand(5, 3)]
    moved = to_cpu([v.to(device) for v in values])
    for original, copy in zip(values, moved):
        assert copy.device.type == "cpu" and copy.dtype == original.dtype and torch.equal(copy, original)
    cpu_tensor = torch.ones(2)
    assert to_cpu([cpu_tensor])[0] is cpu_tensor  # already there: no copy


def test_a_trace_keeps_nothing_on_the_models_device(scrambled, device, photos) -> None:
    """Every tensor a trace (and its post-processing) keeps is on the CPU: on a GPU nothing stays
    allocated for it once it is made, and the app draws without waiting for the device."""
    loaded = on_device(scrambled, device)
    trace = rpn_viz.trace(loaded, photos[0])
    held = [value for value in vars(trace).values() if isinstance(value, torch.Tensor)]
    held += [value for level in trace.levels for value in vars(level).values() if isinstance(value, torch.Tensor)]
    held += [value for field in dataclasses.fields(trace.result)
             if isinstance(value := getattr(trace.result, field.name), torch.Tensor)]
    held.append(trace.preprocess.input_pixels)
    assert len(held) > 20 and all(t.device.type == "cpu" for t in held)
    refiltered = trace.refilter(nms_iou=0.5)
    assert refiltered.boxes.device.type == "cpu"
    assert trace.input_tensor().device == loaded.device  # recomputed on demand, where the model is


def test_the_app_says_a_bad_device_setting_in_one_line(monkeypatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "gpu")
    at = app_test("input")
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"{DEVICE_ENV} must be cpu, cuda, cuda:N or auto, not 'gpu'"]


def test_the_app_names_its_device_and_tf32(monkeypatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    at = app_test("input", untrained=True)  # any model: no weights file needed (a fresh clone has none)
    at.run()
    assert not at.exception
    text = "\n".join(m.value for m in at.markdown)
    assert "Device: **cpu**" in text and "RPN_VIZ_DEVICE" in text and "TF32" in text
    assert "**device:** `cpu`" in text  # the model line of every page
