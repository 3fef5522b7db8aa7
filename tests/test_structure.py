"""rpn_viz's architecture, read from its source (issue 24): sub-packages in layers, no import circles.

Every ``import`` of every module counts, the ones inside functions too (they run, just later). The
layers and their order are stated in rpn_viz/__init__.py's docstring; a module may import its own
sub-package and the ones below it, never one above. The top-level modules (``rpn_viz/__init__``,
``__main__``, ``testing``) sit above all layers and nothing imports them from below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rpn_viz"
#: Top first; a layer imports only itself and the layers after it.
LAYERS = ("commands", "lab", "training", "pipeline", "model", "io")
MAX_MODULES_PER_FOLDER = 12


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> dict[str, int]:
    """Every module ``name`` imports (absolute names, any depth of the file), with the first line number."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # "from pkg import mod" imports pkg.mod; "from mod import name" imports mod
            submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES]
            targets = submodules if len(submodules) == len(node.names) else [source, *submodules]
        else:
            continue
        for target in targets:
            found.setdefault(target, node.lineno)
    return found


GRAPH = {name: {t: line for t, line in imports_of(name).items() if t in MODULES and t != name} for name in MODULES}


def layer_of(name: str) -> str | None:
    """The sub-package a module belongs to, or None for the top-level modules."""
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


def test_the_layers_are_the_sub_packages_and_the_package_docstring_states_their_order() -> None:
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    assert folders == sorted(LAYERS)
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())) or ""
    assert " → ".join(LAYERS) in doc
    for layer in LAYERS:  # each says what lives there and which way its imports go
        text = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text())) or ""
        assert len(text) > 200 and "import" in text.lower(), layer


def test_no_import_circle_anywhere() -> None:
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in GRAPH[name]:
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert circles == [], "import circles: " + "; ".join(" → ".join(c) for c in circles)


def test_imports_only_point_down_the_layers() -> None:
    wrong = []
    for name, targets in GRAPH.items():
        here = layer_of(name)
        for target, line in targets.items():
            there = layer_of(target)
            if here is None:
                continue  # the top-level modules may use everything
            if there is None:
                wrong.append(f"{name}:{line} imports the top-level {target}")
            elif LAYERS.index(there) < LAYERS.index(here):
                wrong.append(f"{name}:{line} imports {target}, a layer above ({here} → {there})")
    assert wrong == []


@pytest.mark.parametrize("folder", [PACKAGE, *(PACKAGE / layer for layer in LAYERS)], ids=lambda p: p.name)
def test_no_folder_holds_more_than_a_dozen_modules(folder: Path) -> None:
    modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
    assert 0 < len(modules) <= MAX_MODULES_PER_FOLDER, sorted(p.name for p in modules)


def test_rpn_viz_imports_no_streamlit() -> None:
    offenders = [f"{name}:{line}" for name in MODULES for target, line in imports_of(name).items()
                 if target.split(".")[0] == "streamlit"]
    assert offenders == []


def test_the_reader_sees_real_edges() -> None:
    """The graph above is not vacuously empty: function-level and relative imports are found."""
    assert "rpn_viz.model.paper" in GRAPH["rpn_viz.model.models"]  # "from . import paper"
    assert "rpn_viz.training.train_set" in GRAPH["rpn_viz.commands.train"]  # inside run()
    assert "rpn_viz.io.errors" in GRAPH["rpn_viz.model.weights"]  # "from ..io.errors import"
