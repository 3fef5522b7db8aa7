"""Finding, verifying and loading weight files — never a silent fallback.

An official checkpoint is looked for, in order, in:

1. a weights folder: ``weights_dir=`` / ``--weights-dir``, else ``$RPN_VIZ_WEIGHTS_DIR``, else the
   ``shared/weights`` folder beside the checkout when there is one (:func:`rpn_viz.io.paths.shared_weights_dir`);
2. torchvision's hub cache, ``$TORCH_HOME/hub/checkpoints`` (where torchvision itself saves it);
3. a download into that cache (torch.hub layout, so torchvision and other tools share the file),
   when the machine is online: :mod:`rpn_viz.model.download` (whose ``find_official`` walks this list).

Every official file is checked against its full sha256 before ``torch.load(..., weights_only=True)``.
When nothing works, :class:`WeightsError` carries one message that names the file, its URL and the
folder to put it in.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import torch

from ..io.errors import UserError
from ..io.paths import shared_weights_dir

WEIGHTS_DIR_ENV = "RPN_VIZ_WEIGHTS_DIR"

# Hashing a 160 MB file costs ~0.3 s; remember verified files by (path, size, mtime).
_VERIFIED: dict[tuple[str, int, int], str] = {}


class WeightsError(UserError, RuntimeError):
    """A weights file is missing, corrupt or not the expected one; the message says what to do."""


@dataclass(frozen=True)
class OfficialFile:
    """One official torchvision checkpoint: where it lives online and what its bytes hash to."""

    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def hub_checkpoint_dir() -> Path:
    """torchvision's cache folder for checkpoints (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def configured_weights_dir(weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The weights folder: the argument if given, else ``$RPN_VIZ_WEIGHTS_DIR``, else the shared
    folder beside the checkout (None when there is none of the three)."""
    chosen = weights_dir if weights_dir is not None else os.environ.get(WEIGHTS_DIR_ENV) or None
    return Path(chosen).expanduser() if chosen is not None else shared_weights_dir()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, cached by path, size and modification time."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _VERIFIED[key] = digest.hexdigest()
    return _VERIFIED[key]


def remember_sha256(path: Path, sha256: str) -> None:
    """Record ``path``'s hash, already computed while writing it (loading then does not read it twice)."""
    stat = path.stat()
    _VERIFIED[(str(path.resolve()), stat.st_size, stat.st_mtime_ns)] = sha256


def verify_official(path: Path, official: OfficialFile) -> None:
    """Raise :class:`WeightsError` unless ``path`` holds exactly the official bytes."""
    actual = sha256_of(path)
    if actual != official.sha256:
        raise WeightsError(
            f"{path} is not the official {official.filename} (sha256 {actual[:16]}…, expected "
            f"{official.sha256[:16]}…): the file is corrupt, truncated or a different checkpoint. "
            f"Delete it and download it again from {official.url}."
        )


def candidate_paths(official: OfficialFile, weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where the file may already be, in the order they are tried."""
    folders = [configured_weights_dir(weights_dir), hub_checkpoint_dir()]
    return [folder / official.filename for folder in folders if folder is not None]


def missing_message(official: OfficialFile, weights_dir: str | os.PathLike | None = None, why: str = "") -> str:
    """The one message shown when an official file cannot be had."""
    target = configured_weights_dir(weights_dir) or hub_checkpoint_dir()
    reason = f" ({why})" if why else ""
    return (
        f"Weights file {official.filename} not found and could not be downloaded{reason}. "
        f"Download it from {official.url} and put it in {target}/ "
        f"(or pass --weights-dir / set {WEIGHTS_DIR_ENV})."
    )


def is_available(official: OfficialFile, weights_dir: str | os.PathLike | None = None) -> bool:
    """Whether a copy is on this machine (not checked for integrity: that happens on load)."""
    return any(path.is_file() for path in candidate_paths(official, weights_dir))


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``torch.load(weights_only=True)`` with a clear error for files that are not checkpoints.

    Accepts a bare state dict or one wrapped as ``{"model": ...}`` / ``{"state_dict": ...}`` (both
    are common in fine-tuning scripts).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Checkpoint {path} does not exist or is not a file.")
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc).strip()
        if "Weights only load failed" in text:  # torch's advice (weights_only=False) would be unsafe
            reason = "not a file of plain tensors (weights_only loading refused it)"
        else:
            reason = (text.splitlines()[0] if text else type(exc).__name__)[:200]
        raise WeightsError(f"Cannot read {path.name} as a PyTorch checkpoint: {reason}") from None
    for key in ("model", "state_dict"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path.name} is not a state dict of tensors.")
    return dict(loaded)


class PartialFile:
    """A file of its own beside ``target`` (``NAME.<random>.partial``) to write into: renamed onto
    ``target`` when the ``with`` block ends normally, deleted when it raises.

    Readers never see part of a file, and two writers of the same target (sessions, server processes)
    never share one: each renames complete bytes. Creating it raises ``OSError`` when the folder cannot
    be written (before any work); downloads and uploads both write through it.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        handle, name = tempfile.mkstemp(prefix=f"{target.name}.", suffix=".partial", dir=target.parent)
        self.path = Path(name)
        self.file = os.fdopen(handle, "wb")

    def __enter__(self) -> BinaryIO:
        return self.file

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            self.file.close()
            if kind is None:
                os.replace(self.path, self.target)
        finally:
            self.path.unlink(missing_ok=True)


def save_uploaded(data: bytes, official: OfficialFile) -> Path:
    """Save uploaded bytes into the hub cache if (and only if) they are the official file."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != official.sha256:
        raise WeightsError(
            f"The uploaded file is not {official.filename} (sha256 {actual[:16]}…, expected {official.sha256[:16]}…)."
        )
    target = hub_checkpoint_dir() / official.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    with PartialFile(target) as out:
        out.write(data)
    return target
