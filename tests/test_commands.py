"""The ``rpn-viz`` command (pyproject.toml's console script): ``rpn-viz IMAGE``, ``rpn-viz learn``, ``rpn-viz app``.

``rpn-viz IMAGE`` is tests/test_cli.py's subject; here, the dispatch to the other two and the
shared one-line error contract.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from rpn_viz.commands import cli, commandline
from rpn_viz.io.paths import app_root, assets_dir
from rpn_viz.testing import AppServer

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_declares_the_command_and_the_app_files() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"rpn-viz": "rpn_viz.commands.cli:console"}
    data = project["tool"]["setuptools"]["data-files"]
    assert data["share/rpn-viz"] == ["app.py"] and data["share/rpn-viz/.streamlit"] == [".streamlit/config.toml"]
    for pattern in data["share/rpn-viz/assets"]:
        assert list(ROOT.glob(pattern)), pattern  # the sample photos are shipped
    assert app_root() == ROOT and assets_dir() == ROOT / "assets"


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    """requirements.txt (the lock) and pyproject.toml's ranges cannot drift apart: every dependency and
    test extra is pinned, with hashes, to a version its range allows (for this Python and system)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    pins: dict[str, str] = {}
    for entry in (ROOT / "requirements.txt").read_text().replace("\\\n", " ").splitlines():
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        requirement = Requirement(entry.split(" --hash")[0].strip())
        assert "--hash=sha256:" in entry, requirement  # pip then checks every file (hash-checking mode)
        (spec,) = requirement.specifier
        assert spec.operator == "==", requirement
        if requirement.marker is None or requirement.marker.evaluate():
            assert canonicalize_name(requirement.name) not in pins, requirement  # one pin here
            pins[canonicalize_name(requirement.name)] = spec.version
    for requirement in declared:
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None and requirement.specifier.contains(version), (requirement, version)
    readme = (ROOT / "README.md").read_text()
    assert ("python3 -m pip install -r requirements.txt && python3 -m pip install --no-deps -e . "
            "&& streamlit run app.py") in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 -m venv --clear" in ci and "-r requirements.txt" in ci and "--no-deps -e ." in ci


def test_learn_is_dispatched_to_the_training_command(capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.console(["learn", str(ROOT / "assets" / "cat.jpg")])  # no --box: its own one-line error
    assert exit.value.code == commandline.EXIT_BAD_INPUT
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rpn-viz learn: error: ") and "--box" in lines[0]


def test_a_bad_image_goes_through_the_shared_error_line(capsys, tmp_path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    assert cli.console([str(folder)]) == commandline.EXIT_BAD_INPUT
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"rpn_viz: error: {folder}: is a folder, not an image file"]


def test_run_command_turns_any_failure_into_one_line(capsys) -> None:
    def boom() -> int:
        raise RuntimeError("first line\nsecond line")

    assert commandline.run_command("tool", boom) == commandline.EXIT_BAD_INPUT
    assert capsys.readouterr().err == "tool: error: RuntimeError: first line second line\n"


@pytest.mark.slow
def test_rpn_viz_app_serves_the_app(tmp_path) -> None:
    """``python -m rpn_viz app`` (= ``rpn-viz app``) starts Streamlit on app.py with the project's config."""
    with AppServer(tmp_path / "streamlit.log") as server:
        with urllib.request.urlopen(server.url, timeout=30) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        log = server.log_tail()
    assert "Traceback" not in log


@pytest.mark.parametrize(
    "text, expected",
    [("10,20,200,240", (10.0, 20.0, 200.0, 240.0)), (" 1.5 2 ; 3 4e1 ", (1.5, 2.0, 3.0, 40.0))],
)
def test_box_argument_reads_four_numbers(text, expected) -> None:
    assert commandline.box_argument(text) == expected


@pytest.mark.parametrize(
    "text, reason",
    [("1,2,3", "expected 4 numbers"), ("a,b,c,d", "must be four numbers"), ("1,2,nan,4", "finite"),
     ("5,5,1,9", "x2 must exceed x1")],
)
def test_box_argument_says_what_is_wrong(text, reason, capsys) -> None:
    parser = commandline.OneLineParser("tool", prog="tool")
    parser.add_argument("--box", type=commandline.box_argument)
    with pytest.raises(SystemExit) as exit:
        parser.parse_args(["--box", text])
    assert exit.value.code == commandline.EXIT_BAD_INPUT
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tool: error: argument --box: ") and reason in lines[0]


def test_typed_boxes_are_clipped_and_errors_name_the_line() -> None:
    from rpn_viz.pipeline.boxes import parse_boxes

    assert parse_boxes("-5, 10, 50, 60\n\n20 30 900 40", (100, 80)) == [[0.0, 10.0, 50.0, 60.0], [20.0, 30.0, 100.0, 40.0]]
    with pytest.raises(ValueError, match="line 2: expected 4 numbers"):
        parse_boxes("1,2,3,4\n1,2,3", (100, 100))
