"""Emoji artwork from an Iconify JSON package (`npm pack @iconify-json/NAME`), as standalone
SVGs keyed by codepoints the way realart_build.py names sprites ("1F9B8-1F3FD-200D-2640").

Iconify keeps every icon's inner SVG in one icons.json, named by words ("man-superhero-dark");
chars.json maps codepoints to those names. A set without chars.json (noto-v1) is keyed through
another set's chars.json: Iconify derives the names from the Unicode names in every emoji set,
except that some sets end skin tones in "-skin-tone" and others do not.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

SVG_NS = "http://www.w3.org/2000/svg"


def _member(package: Path, name: str) -> dict:
    with tarfile.open(package) as tar:
        member = tar.extractfile(f"package/{name}")
        if member is None:
            raise SystemExit(f"{package} has no package/{name}")
        return json.loads(member.read())


def codepoints(package: Path) -> dict[str, str]:
    """Icon name -> codepoints (upper case, joined by "-"), from the package's chars.json."""
    return {name: cp.upper() for cp, name in _member(package, "chars.json").items()}


def load_iconify(package: Path, names_from: Path | None = None) -> dict[str, str]:
    """Codepoints -> standalone SVG text for every icon (aliases left out) whose codepoints
    are known: from the package's own chars.json, or from names_from's."""
    data = _member(package, "icons.json")
    known = codepoints(package) or (codepoints(names_from) if names_from else {})
    width, height = data.get("width", 16), data.get("height", 16)
    svgs = {}
    for name, icon in data["icons"].items():
        cp = known.get(name) or known.get(name.removesuffix("-skin-tone"))
        if cp is None:
            continue
        w, h = icon.get("width", width), icon.get("height", height)
        x, y = icon.get("left", 0), icon.get("top", 0)
        svgs[cp] = (
            f'<svg xmlns="{SVG_NS}" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{x} {y} {w} {h}">{icon["body"]}</svg>'
        )
    return svgs
