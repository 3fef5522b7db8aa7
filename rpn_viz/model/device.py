"""Where the network runs: the device setting, its checks, and the one copy of results to the CPU.

One device story for the whole package: a model lives on one device (:func:`resolve_device`), and
every tensor that a trace, a training session, an example set or the lab makes lives there too. Values
move to the CPU once, where something is drawn or printed, in a single transfer
(:func:`to_cpu`): on a GPU every separate ``.cpu()`` waits for the device.

The setting is ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present): the CLI's ``--device``,
else the environment variable ``RPN_VIZ_DEVICE`` (what the app reads), else ``auto``. This module
imports torch only inside the functions that need it, so the command line can check the setting in
a fraction of a second.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Sequence

from ..io.errors import OptionError

if TYPE_CHECKING:
    import torch

#: The environment variable the app (and every command without ``--device``) reads.
DEVICE_ENV = "RPN_VIZ_DEVICE"
CHOICES = "cpu, cuda, cuda:N or auto"
#: The help of every command's ``--device`` option.
DEVICE_HELP = f"{CHOICES} (default: ${DEVICE_ENV}, else CUDA when present)"


def check_device_name(name: str, what: str = "--device") -> str:
    """``name`` if it is cpu, cuda, cuda:N or auto; else ``ValueError`` in one line naming the choices."""
    if name not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", name):
        raise OptionError(f"{what} must be {CHOICES}, not {name!r}")
    return name


def device_setting(explicit: str | None = None) -> tuple[str, str]:
    """(setting, where it came from): ``explicit`` (``--device``), else ``$RPN_VIZ_DEVICE``, else auto.

    Checked (:func:`check_device_name`), without importing torch.
    """
    if explicit is not None:
        return check_device_name(explicit), "--device"
    from_env = os.environ.get(DEVICE_ENV, "").strip()
    if from_env:
        return check_device_name(from_env, DEVICE_ENV), DEVICE_ENV
    return "auto", "auto"


def default_device() -> "torch.device":
    """CUDA when present, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: "str | torch.device | None" = None) -> "torch.device":
    """The device to run on: ``device``, else ``$RPN_VIZ_DEVICE``, else CUDA when present.

    Raises ``ValueError`` in one line for a malformed setting, or for CUDA (or a CUDA index) that
    this machine does not have.
    """
    import torch

    if isinstance(device, torch.device):
        name, source = str(device), "device"
    else:
        name, source = device_setting(device)
    if name == "auto":
        return default_device()
    chosen = torch.device(name)
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"{source} {name} was asked for, but this machine has no CUDA device; use cpu or auto.")
        count = torch.cuda.device_count()
        if chosen.index is not None and chosen.index >= count:
            raise OptionError(f"{source} {name} was asked for, but this machine has {count} CUDA device(s): "
                             f"cuda:0…cuda:{count - 1}.")
    return chosen


def device_name(device: "torch.device") -> str:
    """e.g. "cpu" or "cuda:0 (NVIDIA H200)": the device and, for a GPU, its product name."""
    import torch

    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def tf32_allowed() -> dict[str, bool]:
    """Whether CUDA may use TF32 (10-bit mantissa) for float32 convolutions and matrix products.

    PyTorch's defaults, kept here: allowed for cuDNN convolutions, not for matmuls. TF32 is why a
    GPU's features differ from the CPU's by ~1e-3, and so its proposals slightly: each device is
    exact to itself (the trace equals ``model.rpn`` on the same device), not to the other.
    """
    import torch

    return {"convolutions": bool(torch.backends.cudnn.allow_tf32),
            "matmul": bool(torch.backends.cuda.matmul.allow_tf32)}


def to_cpu(tensors: Sequence["torch.Tensor"]) -> list["torch.Tensor"]:
    """The tensors on the CPU, in one device-to-host transfer per dtype (as they are, if already there).

    On a GPU each ``.cpu()`` is a copy the host waits for; a trace keeps a dozen tensors, so they are
    flattened into one buffer per dtype on the device, copied once, and split again (views of that
    buffer, in the original shapes). Values are exactly the device's.
    """
    import torch

    out: list[torch.Tensor | None] = [t if t.device.type == "cpu" else None for t in tensors]
    by_dtype: dict[torch.dtype, list[int]] = {}
    for i, t in enumerate(tensors):
        if out[i] is None:
            by_dtype.setdefault(t.dtype, []).append(i)
    for indices in by_dtype.values():
        parts = [tensors[i].detach().reshape(-1) for i in indices]
        flat = torch.cat(parts).cpu() if len(parts) > 1 else parts[0].cpu()
        for i, piece in zip(indices, flat.split([p.numel() for p in parts])):
            out[i] = piece.view(tensors[i].shape)
    return out  # type: ignore[return-value]
