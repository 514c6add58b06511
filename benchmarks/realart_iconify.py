"""Emoji artwork from an Iconify JSON package (`npm pack @iconify-json/NAME`), as standalone
SVGs keyed by codepoints the way realart_build.py names sprites ("1F9B8-1F3FD-200D-2640").

Iconify keeps every icon's inner SVG in one icons.json, named by words ("man-superhero-dark");
chars.json maps codepoints to those names. A set without chars.json (noto-v1) is keyed through
another set's chars.json: Iconify derives the names from the Unicode names in every emoji set,
except that some sets end skin tones in "-skin-tone" and others do not.

Streamline Emojis (no chars.json either) is keyed through Fluent's names too, but numbers its
drawings: a person's "-1" is the default yellow skin, "-2" a light one ("man-2" is Fluent's
"man-light"); a thing's numbers are other drawings of the same emoji ("pizza-1", "pizza-2"), of
which one is kept. A few of its names differ from Fluent's ("fox-face" is Fluent's "fox").

Firefox OS Emoji (fxemoji, no chars.json) names each icon by its character's Unicode name run
together in lower case ("maninbusinesssuitlevitating"), so it is keyed through the Unicode names
of Fluent's single-codepoint emoji. It has one drawing per emoji (no skin tones, no genders).
Some of its names are shortened ("gpa", "cop") and a few animals have two drawings, the bare name
being the face ("cat") and "-side" the whole animal ("catside", Unicode's CAT).
"""

from __future__ import annotations

import json
import re
import tarfile
import unicodedata
from pathlib import Path

SVG_NS = "http://www.w3.org/2000/svg"

# Streamline's names where Fluent's differ, for the people, animals and things the benchmark
# labels (flags, smileys, couples and families are left unmapped)
STREAMLINE_NAMES = {
    "bride-with-veil": "person-with-veil", "man-with-chinese-cap": "person-with-skullcap",
    "man-in-suit-levitating": "person-in-suit-levitating", "gesturing-ok": "person-gesturing-ok",
    "bear-face": "bear", "fox-face": "fox", "frog-face": "frog", "hamster-face": "hamster",
    "lion-face": "lion", "panda-face": "panda", "unicorn-face": "unicorn", "wolf-face": "wolf",
    "robot-face": "robot", "direct-hit": "bullseye", "game-dice": "game-die",
    "pistol": "water-pistol", "school-backpack": "backpack",
}  # fmt: skip
# A numbered person's skin tone, as Fluent ends its names; "-3" (baby, boy and girl only) is a
# brown between Fluent's medium and medium-dark, taken as medium
STREAMLINE_TONES = {"1": "", "2": "-light", "3": "-medium"}
# Which drawing of a numbered thing is kept: the first, unless it has a face and another does
# not (the builder leaves smiley-like subjects out)
STREAMLINE_DRAWING = {"hot-beverage": "2", "watermelon": "2"}

# Firefox OS Emoji's names that are not the Unicode name run together, for the people and animals
# the benchmark labels (looked at: each draws the character named); None leaves an icon out
FXEMOJI_NAMES = {
    "blonde": "personwithblondhair", "bowing": "personbowingdeeply", "bride": "bridewithveil",
    "construct": "constructionworker", "cop": "policeofficer", "gma": "olderwoman",
    "gpa": "olderman", "guapimao": "manwithguapimao", "headmassage": "facemassage",
    "handup": "happypersonraisingonehand", "nogesture": "facewithnogoodgesture",
    "okgesture": "facewithokgesture", "pout": "personwithpoutingface", "frown": "personfrowning",
    "running": "runner", "walking": "pedestrian", "turban": "manwithturban",
    "waitress": "informationdeskperson", "sleuthspy": "sleuthorspy",
    # the bare name is the face where "-side" is the whole animal (the bare names would match
    # the whole animals); then other faces named without "face"
    "cat": "catface", "catside": "cat", "dog": "dogface", "dogside": "dog",
    "mouse": "mouseface", "mouseside": "mouse", "pig": "pigface", "pigside": "pig",
    "tiger": "tigerface", "tigerside": "tiger", "bunny": "rabbitface", "bunnyside": "rabbit",
    "dragonhead": "dragonface", "dragonside": "dragon", "leopardside": "leopard",
    "bear": "bearface", "frog": "frogface", "hampster": "hamsterface",
    "spurtingwhale": "spoutingwhale",
    "sailboat": None,  # drawn on a square of sea: scenery, as the builder leaves out
}  # fmt: skip


def _member(package: Path, name: str) -> dict:
    with tarfile.open(package) as tar:
        member = tar.extractfile(f"package/{name}")
        if member is None:
            raise SystemExit(f"{package} has no package/{name}")
        return json.loads(member.read())


def codepoints(package: Path) -> dict[str, str]:
    """Icon name -> codepoints (upper case, joined by "-"), from the package's chars.json."""
    return {name: cp.upper() for cp, name in _member(package, "chars.json").items()}


def streamline_codepoints(names: list[str], fluent: dict[str, str]) -> dict[str, str]:
    """Icon name -> codepoints for Streamline Emojis, through Fluent's names (`fluent`, from
    codepoints()). In 1.2.4 no two icons get the same codepoints."""
    found = {}
    for name in names:
        stem, number = name, None
        if numbered := re.fullmatch(r"(.+)-(\d)", name):
            stem, number = numbered[1], numbered[2]
        stem = STREAMLINE_NAMES.get(stem, stem)
        if number and f"{stem}-light" in fluent:  # a person or a hand: Fluent has its tones
            if number not in STREAMLINE_TONES:
                continue
            stem += STREAMLINE_TONES[number]
        elif number and number != STREAMLINE_DRAWING.get(stem, "1"):
            continue  # another drawing of a thing already kept
        if stem in fluent:
            found[name] = fluent[stem]
    return found


def fxemoji_codepoints(names: list[str], fluent: dict[str, str]) -> dict[str, str]:
    """Icon name -> codepoints for Firefox OS Emoji, through the Unicode names of Fluent's
    single-codepoint emoji (`fluent`, from codepoints(); FE0F aside). Unicode never renames a
    character, so any Python gives the same names; a codepoint too new for its unicodedata has
    none and is skipped (Firefox OS Emoji predates them all). In 1.2.2 no two icons get the
    same codepoints."""
    by_name = {}
    for cp in fluent.values():
        core = [p for p in cp.split("-") if p != "FE0F"]
        if len(core) != 1:
            continue
        try:
            name = unicodedata.name(chr(int(core[0], 16)))
        except ValueError:
            continue
        by_name[name.lower().replace(" ", "").replace("-", "")] = cp
    found = {}
    for name in names:
        key = FXEMOJI_NAMES.get(name, name)
        if key is not None and key in by_name:
            found[name] = by_name[key]
    return found


# how load_iconify keys a set named otherwise than the set whose chars.json it borrows
KEYINGS = {"streamline": streamline_codepoints, "fxemoji": fxemoji_codepoints}


def load_iconify(
    package: Path, names_from: Path | None = None, keying: str | None = None
) -> dict[str, str]:
    """Codepoints -> standalone SVG text for every icon (aliases left out) whose codepoints
    are known: from the package's own chars.json, or from names_from's (through the set's own
    naming with `keying`, a key of KEYINGS)."""
    data = _member(package, "icons.json")
    known = codepoints(package) or (codepoints(names_from) if names_from else {})
    if keying:
        known = KEYINGS[keying](list(data["icons"]), known)
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
