"""The cluster image's pins (requirements/image-lock.txt): read them, and check an environment.

`python -m videosft.image_lock requirements/image-lock.txt` runs at the end of the Dockerfile: it
fails the build when the installed version of any pinned package differs from the lock (e.g. the
project install pulled another torch). tests/unit/test_image.py uses `read_lock` to keep the pins,
pyproject.toml's ranges and the docs in agreement.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


def read_lock(path: str | Path) -> dict[str, Requirement]:
    """Every requirement of the lock by canonical name; each must be an exact `==` pin."""
    out: dict[str, Requirement] = {}
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):  # comments, blank lines, index options
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            raise ValueError(f"{path}:{n}: {line!r} is not an exact == pin")
        out[canonicalize_name(req.name)] = req
    return out


def pinned_version(req: Requirement) -> Version:
    return Version(next(iter(req.specifier)).version)


def installed_mismatches(pins: dict[str, Requirement]) -> list[str]:
    """Pinned packages whose installed version is missing or differs (local labels included)."""
    problems = []
    for name, req in sorted(pins.items()):
        try:
            have = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            problems.append(f"{name}: pinned {pinned_version(req)}, not installed")
            continue
        if have != pinned_version(req):
            problems.append(f"{name}: pinned {pinned_version(req)}, installed {have}")
    return problems


def main(argv: list[str]) -> int:
    pins = read_lock(argv[0] if argv else "requirements/image-lock.txt")
    problems = installed_mismatches(pins)
    for p in problems:
        print(f"image-lock: {p}", file=sys.stderr)
    print(f"image-lock: {len(pins) - len(problems)} of {len(pins)} pins installed as locked")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
