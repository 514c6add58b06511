"""Number lists as users type them: seeds, layers, keys and grids."""

from pathlib import Path

import pytest

from heroforge.errors import UserError
from heroforge.generate.seeds import (
    MAX_SEEDS,
    parse_grid,
    parse_keys,
    parse_layers,
    parse_seeds,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-3,7", [0, 1, 2, 3, 7]),
        (" 5 , 1-2 ", [5, 1, 2]),
        ("3 - 5", [3, 4, 5]),
        ("1,1-2", [1, 2]),  # duplicates drawn once
        ("4294967295", [2**32 - 1]),
    ],
)
def test_seed_lists(text, expected):
    assert parse_seeds(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("3-", "has no end"),
        ("a", "is not a seed"),
        ("-5", "cannot be negative"),
        ("1,-5-7", "cannot be negative"),
        ("10^12", "is not a seed"),
        ("1000000000000", "out of range"),
        ("4294967296", "out of range"),
        ("9" * 5000, "far too large"),
        ("", "no seeds"),
        ("1,,2", "empty item"),
        ("1,2,", "empty item"),
        ("9-3", "runs backwards"),
        ("0x10", "is not a seed"),
        ("٣", "is not a seed"),  # a non-ASCII digit
        (f"0-{MAX_SEEDS}", "at most"),
        ("0-4294967295", "at most"),
    ],
)
def test_bad_seed_lists_are_one_line_errors(text, says):
    with pytest.raises(UserError, match=says) as err:
        parse_seeds(text)
    assert "\n" not in str(err.value)
    assert len(str(err.value)) < 200


def test_layers_are_bounded_by_the_model():
    assert parse_layers("0-6", num_ws=8) == list(range(7))
    with pytest.raises(UserError, match="from 0 to 7"):
        parse_layers("0-8", num_ws=8)


def test_keys_mix_seeds_and_latent_files_and_keep_repeats():
    keys = parse_keys("1, out/a.latent.safetensors ,2-3,1")
    assert keys == [1, Path("out/a.latent.safetensors"), 2, 3, 1]
    with pytest.raises(UserError, match="is not a seed"):
        parse_keys("1,hero.png")
    with pytest.raises(UserError, match="no seeds"):
        parse_keys(" ")


def test_grids():
    assert parse_grid("2x3") == (2, 3)
    assert parse_grid(" 4 X 1 ") == (4, 1)
    for bad in ("2x", "x3", "2*3", "0x2", "17x1"):
        with pytest.raises(UserError, match="--grid"):
            parse_grid(bad)
