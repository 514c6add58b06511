"""Parse the number lists users type: seeds "0-99,123", layers "0-6", parents "12,hero.latent...".

Every mistake is one line that quotes the offending item and says what would be right. Ranges
are checked before they are expanded, so "0-4294967295" costs nothing to refuse.
"""

from __future__ import annotations

import re
from pathlib import Path

from heroforge.errors import UserError

MAX_SEED = 2**32 - 1  # numpy's RandomState takes seeds in [0, 2**32)
MAX_SEEDS = 10_000  # per command: more is almost surely a typo, and hours of work
LATENT_SUFFIX = ".safetensors"  # a list item ending so names a saved latent, not a seed

_ITEM = re.compile(r"([0-9]+)(?:\s*-\s*([0-9]*))?", re.ASCII)
_GRID = re.compile(r"([0-9]+)\s*[xX]\s*([0-9]+)", re.ASCII)


def _short(text: str) -> str:
    """text quoted for a message, cut if long: the message must stay one readable line."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _parse_item(item: str, what: str, text: str) -> tuple[int, int]:
    match = _ITEM.fullmatch(item)
    if not item:
        raise UserError(f"empty item in the {what} list {_short(text)}")
    if re.fullmatch(r"-\s*[0-9]+(-[0-9]*)?", item):
        raise UserError(f"{what}s cannot be negative: {_short(item)} in {_short(text)}")
    if match is None:
        raise UserError(f"{_short(item)} is not a {what} or a range like 3-10 (in {_short(text)})")
    if max(len(match.group(1)), len(match.group(2) or "")) > 18:
        raise UserError(f"{what} {_short(item)} is far too large (in {_short(text)})")
    if match.group(2) == "":
        raise UserError(f"the range {_short(item)} has no end: write it like {match.group(1)}-10")
    first = int(match.group(1))
    last = first if match.group(2) is None else int(match.group(2))
    if last < first:
        raise UserError(f"the range {_short(item)} runs backwards: write {last}-{first}")
    return first, last


def parse_int_list(text: str, what: str, max_value: int, max_count: int) -> list[int]:
    """Comma-separated numbers and inclusive ranges a-b, in order, duplicates dropped.

    what: the word for an item in messages ("seed", "layer"); numbers must be in
    [0, max_value] and at most max_count of them.
    """
    text = text.strip()
    if not text:
        raise UserError(f"no {what}s given: write them like 0-9,42")
    ranges = [_parse_item(item.strip(), what, text) for item in text.split(",")]
    for _, last in ranges:
        if last > max_value:
            raise UserError(f"{what} {last} is out of range: {what}s go from 0 to {max_value}")
    total = sum(last - first + 1 for first, last in ranges)
    if total > max_count:
        raise UserError(f"{total} {what}s asked for; at most {max_count} at a time")
    values = (v for first, last in ranges for v in range(first, last + 1))
    return list(dict.fromkeys(values))


def parse_seeds(text: str, max_count: int = MAX_SEEDS) -> list[int]:
    """Seeds "0-99,123" -> [0, 1, ..., 99, 123]; each in [0, 2**32), at most max_count."""
    return parse_int_list(text, "seed", MAX_SEED, max_count)


def parse_layers(text: str, num_ws: int) -> list[int]:
    """Layer indices "0-6" of a model with num_ws ws (0 .. num_ws - 1)."""
    return parse_int_list(text, "layer", num_ws - 1, num_ws)


def parse_keys(text: str, max_count: int = MAX_SEEDS) -> list[int | Path]:
    """Seeds, ranges and saved latent files (items ending in .safetensors), in order.

    Duplicates are kept: a walk may pass the same hero twice ("1,2,1").
    """
    text = text.strip()
    keys: list[int | Path] = []
    for item in text.split(",") if text else []:
        item = item.strip()
        if item.endswith(LATENT_SUFFIX):
            keys.append(Path(item).expanduser())
        else:
            keys.extend(parse_int_list(item, "seed", MAX_SEED, max_count))
        if len(keys) > max_count:
            raise UserError(f"more than {max_count} seeds or latents asked for in {_short(text)}")
    if not keys:
        raise UserError("no seeds given: write them like 12,40,77")
    return keys


def parse_grid(text: str) -> tuple[int, int]:
    """ "RxC" -> (rows, cols), each from 1 to 16."""
    match = _GRID.fullmatch(text.strip())
    if match is None:
        raise UserError(f"--grid {_short(text)} is not ROWSxCOLS, e.g. 2x3")
    rows, cols = int(match.group(1)), int(match.group(2))
    if not (1 <= rows <= 16 and 1 <= cols <= 16):
        raise UserError(f"--grid {_short(text)}: rows and columns go from 1 to 16")
    return rows, cols
