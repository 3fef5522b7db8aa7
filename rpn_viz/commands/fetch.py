"""``rpn-viz fetch``: download every weights file the app can use, so that a class needs no network.

A teacher runs ``rpn-viz fetch`` at home; in a classroom without a network the app then finds the
files where it always looks and opens on the COCO model. The files (:func:`files`) are
the four COCO checkpoints (:data:`rpn_viz.model.models.MODELS`) and the ImageNet MobileNetV2 under the
offline model (``paper_rpn``, :data:`rpn_viz.model.paper.MOBILENET_V2_IMAGENET`).

Nothing here downloads by itself: a file already on the machine is found and sha256-checked by
:func:`rpn_viz.model.download.find_official` (weights folder, then torchvision's hub cache), and a missing
one goes through :func:`rpn_viz.model.download.download` into the hub cache (``*.partial`` file, full
sha256, progress line on stderr), so nothing half-written ever has a real file name.

The pure parts (:func:`files`, :func:`selected`, :func:`status_of`, :func:`list_table`) need no
network; ``rpn-viz fetch --help`` and a bad command line are answered before torch is imported.
A sub-command of :mod:`rpn_viz.commands.cli` (``NAME``, ``HELP``, ``DESCRIPTION``, :func:`add_arguments`,
:func:`run`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

from ..io.errors import OptionError
from .commandline import EXIT_BAD_INPUT, MODEL_NAMES, STDERR_PROGRESS, print_error

if TYPE_CHECKING:
    from ..model.weights import OfficialFile

NAME = "rpn-viz fetch"
PAPER_RPN = "paper_rpn"  # rpn_viz.model.models.PAPER_RPN, here so that the parser needs no torch
#: What ``rpn-viz fetch`` with no model fetches: what the app opens on, online and offline.
DEFAULT_SELECTION = ("mobilenet_v3_large_fpn", PAPER_RPN)
MB = 1e6

State = Literal["verified", "missing", "wrong hash"]


@dataclass(frozen=True)
class WeightsFile:
    """One file the app can use: the model name that needs it, what it is, and the official file."""

    model: str
    what: str
    official: OfficialFile
    published_mb: float | None  # torchvision's published size, shown before the file is here

    @property
    def filename(self) -> str:
        return self.official.filename


@dataclass(frozen=True)
class Status:
    """Where a file is on this machine and whether its bytes are the official ones."""

    file: WeightsFile
    state: State
    path: Path | None = None  # where it was found (None when missing)
    size: int | None = None  # bytes on disk

    def describe_size(self) -> str:
        """``"74.2 MB"`` on disk, ``"~74.2 MB"`` published (not here yet), or ``"?"``."""
        if self.size is not None:
            return f"{self.size / MB:.1f} MB"
        return f"~{self.file.published_mb:.1f} MB" if self.file.published_mb else "?"


def _published_mb(builder: object, official: OfficialFile) -> float | None:
    """torchvision's ``_file_size`` (MB) of the weights entry of ``builder`` with ``official``'s file name."""
    from torchvision.models import get_model_weights

    try:
        return next((float(w.meta["_file_size"]) for w in get_model_weights(builder)
                     if w.url.rsplit("/", 1)[-1] == official.filename and "_file_size" in w.meta), None)
    except (KeyError, ValueError, TypeError):
        return None


def files() -> list[WeightsFile]:
    """Every weights file the app can use, in the order the app's picker lists the models.

    Read from the registries at call time (tests point them at files served on the loopback).
    """
    from torchvision.models import mobilenet_v2

    from ..model import paper
    from ..model.models import MODELS

    listed = [WeightsFile(spec.name, spec.title, spec.official, _published_mb(spec.builder, spec.official))
              for spec in MODELS.values()]
    backbone = paper.MOBILENET_V2_IMAGENET
    listed.append(WeightsFile(PAPER_RPN, "ImageNet MobileNetV2: the offline model's backbone (the paper's RPN)",
                              backbone, _published_mb(mobilenet_v2, backbone)))
    return listed


def selected(every: Sequence[WeightsFile], models: Sequence[str], all_files: bool) -> list[WeightsFile]:
    """The files ``--all`` / ``MODEL...`` / nothing (:data:`DEFAULT_SELECTION`) asks for, in list order."""
    wanted = set(m.model for m in every) if all_files else set(models or DEFAULT_SELECTION)
    return [f for f in every if f.model in wanted]


def status_of(file: WeightsFile, weights_dir: str | None = None) -> Status:
    """Whether ``file`` is on this machine where the app looks, and whether it is the official bytes."""
    from ..model.download import find_official
    from ..model.weights import WeightsError, candidate_paths

    present = next((p for p in candidate_paths(file.official, weights_dir) if p.is_file()), None)
    if present is None:
        return Status(file, "missing")
    try:
        path = find_official(file.official, weights_dir, allow_download=False)
    except WeightsError:
        return Status(file, "wrong hash", present, present.stat().st_size)
    return Status(file, "verified", path, path.stat().st_size)


def list_table(statuses: Sequence[Status]) -> str:
    """``rpn-viz fetch --list``: one row per file (model, file, size, state, where), and the cache."""
    from ..model.weights import hub_checkpoint_dir

    rows = [("model", "file", "size", "status", "where")]
    rows += [(s.file.model, s.file.filename, s.describe_size(), s.state, str(s.path.parent) if s.path else "")
             for s in statuses]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:4], widths)), r[4]]).rstrip() for r in rows]
    done = sum(s.state == "verified" for s in statuses)
    lines.append(f"{done} of {len(statuses)} files present and verified; downloads go to {hub_checkpoint_dir()}")
    return "\n".join(lines)


def fetch_one(file: WeightsFile, weights_dir: str | None = None) -> Status:
    """Make sure ``file`` is here and verified: say so if it already was, else download it (progress line).

    Raises :class:`rpn_viz.model.download.DownloadError` (offline, disk full, wrong bytes: nothing is left
    under the real name) or :class:`rpn_viz.model.weights.WeightsError` (a present file with the wrong hash).
    """
    from ..model.download import download
    from ..model.weights import verify_official

    before = status_of(file, weights_dir)
    if before.state == "verified":
        print(f"{file.model}: {file.filename} is already here, verified ({before.describe_size()}): {before.path}")
        return before
    if before.path is not None:  # the wrong bytes under the real name: its one-line WeightsError says what to do
        verify_official(before.path, file.official)
    download(file.official, progress=STDERR_PROGRESS, retry=True)
    after = status_of(file, weights_dir)
    print(f"{file.model}: {file.filename} downloaded, verified ({after.describe_size()}): {after.path}")
    return after


HELP = "download the weights files, sha256-checked, before a class without a network"
DESCRIPTION = ("Download every weights file the app can use into torchvision's cache, sha256-checked, "
               "so that the app works without a network (run it at home before a class).")
PARSER_OPTIONS = {
    "epilog": f"Models: {', '.join(MODEL_NAMES)} ({PAPER_RPN}: the ImageNet MobileNetV2 under the offline "
    f"model). Without a model or --all: {' and '.join(DEFAULT_SELECTION)}, what the app opens on.",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="*", metavar="MODEL", help="the models whose files to fetch")
    parser.add_argument("--all", action="store_true", help="every file (the four COCO models and the backbone)")
    parser.add_argument("--list", action="store_true", help="show each file, its size, and whether it is "
                        "present and verified; download nothing")
    parser.add_argument("--weights-dir", metavar="DIR", help="a folder of official files to count as present "
                        "(as the app does; default $RPN_VIZ_WEIGHTS_DIR or ../shared/weights)")


def run(args: argparse.Namespace) -> int:
    """``rpn-viz fetch [--all | MODEL...] [--list]``: 0 when every asked-for file is here and verified,
    else 2 with one line on stderr per file that failed (a bad command line: one line, raised here)."""
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown:
        raise OptionError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODEL_NAMES)}")
    if args.all and args.models:
        raise OptionError("give --all or model names, not both")
    from ..model.download import DownloadError
    from ..io.errors import describe_error

    every = files()
    if args.list:
        print(list_table([status_of(f, args.weights_dir) for f in selected(every, args.models, not args.models)]))
        return 0
    chosen, failed = selected(every, args.models, args.all), 0
    for file in chosen:
        try:
            fetch_one(file, args.weights_dir)
        except Exception as exc:  # one line for this file (offline, disk full, wrong hash), then the next
            print_error(NAME, f"{file.filename}: {exc.reason if isinstance(exc, DownloadError) else describe_error(exc)}")
            failed += 1
    if failed:
        print(f"{len(chosen) - failed} of {len(chosen)} files here and verified; {failed} failed "
              "(run rpn-viz fetch again once that is fixed).")
        return EXIT_BAD_INPUT
    print(f"{len(chosen)} of {len(chosen)} files here and verified: the app needs no network for them.")
    return 0

