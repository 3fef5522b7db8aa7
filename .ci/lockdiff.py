"""What differs between the lock (requirements.txt) and the running environment: ``python lockdiff.py LOCK``.

``pins(text)``: the lock's ``name -> version`` for the running Python and system (environment markers
evaluated here), compared with the versions installed where this runs (.ci/drift). Prints one
line per package whose version differs, is missing or is new, and a closing count; exits 0 either way
(a difference is news, not a failure: the tests decide).
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def pins(text: str) -> dict[str, str]:
    """The lock's pinned versions that apply to this Python and system, by canonical name."""
    found: dict[str, str] = {}
    for entry in text.replace("\\\n", " ").splitlines():
        entry = entry.split(" --hash")[0].strip()
        if not entry or entry.startswith(("#", "-")):
            continue
        requirement = Requirement(entry)
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            found[canonicalize_name(requirement.name)] = spec.version
    return found


def installed(exclude: str = "rpn-viz") -> dict[str, str]:
    """Every distribution installed in the running environment (but the project itself)."""
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()
            if canonicalize_name(d.metadata["Name"]) != exclude}


def differences(locked: dict[str, str], now: dict[str, str], ignore: frozenset[str] = frozenset({"pip"})) -> list[str]:
    """``"numpy  2.4.6 -> 2.5.0"`` lines, sorted by name: changed, only locked, only installed."""
    lines = []
    for name in sorted((locked.keys() | now.keys()) - ignore):
        old, new = locked.get(name), now.get(name)
        if old != new:
            lines.append(f"{name:32s} {old or '(not in the lock)':>16s} -> {new or '(not installed)'}")
    return lines


def main(argv: list[str]) -> int:
    locked, now = pins(Path(argv[0]).read_text()), installed()
    lines = differences(locked, now)
    print(f"{'package':32s} {'lock':>16s} -> installed here")
    print("\n".join(lines) if lines else "(none: the ranges resolve to exactly the lock)")
    print(f"{len(lines)} of {len(locked.keys() | now.keys())} packages differ from the lock")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
