"""Style-mixing grids: layout, which layers come from where, and refusals."""

import numpy as np
import pytest
import torch
from PIL import Image

from heroforge.errors import UserError
from heroforge.generate.latents import seed_ws
from heroforge.generate.mix import default_layers, mix_ws, style_mix_grid, write_mix
from heroforge.generate.sample import generate_images


def test_mix_ws_replaces_only_the_chosen_layers():
    rows, cols = torch.zeros(2, 8, 4), torch.ones(3, 8, 4)
    mixed = mix_ws(rows, cols, [0, 2])
    assert mixed.shape == (2, 3, 8, 4)
    assert (mixed[:, :, [0, 2]] == 1).all()
    assert (mixed[:, :, [1, 3, 4, 5, 6, 7]] == 0).all()
    assert default_layers(8) == list(range(7))
    assert default_layers(4) == [0, 1, 2, 3]


def test_grid_layout(model, tmp_path):
    path = write_mix(model, [1, 2, 3], [4, 5], tmp_path, batch_size=4)
    assert path.name == "mix-layers0-6.png"
    grid = np.asarray(Image.open(path))
    assert grid.shape == (4 * 32, 3 * 32, 3)  # (rows + 1) x (cols + 1) cells
    assert (grid[:32, :32] == 255).all()  # blank corner
    heroes = [np.asarray(img).astype(int) for img in generate_images(model, [1, 2, 3, 4, 5])]
    for col, hero in enumerate(heroes[3:]):
        assert np.abs(grid[:32, 32 * (col + 1) : 32 * (col + 2)] - hero).max() <= 1
    for row, hero in enumerate(heroes[:3]):
        assert np.abs(grid[32 * (row + 1) : 32 * (row + 2), :32] - hero).max() <= 1
    cell = grid[32:64, 32:64].astype(int)  # row hero 1 with column hero 4's layers 0-6
    assert np.abs(cell - heroes[0]).mean() > 1
    assert np.abs(cell - heroes[3]).mean() > 1


def test_all_layers_from_the_column_give_the_column_hero(model):
    rows, cols = seed_ws(model, [1, 2]), seed_ws(model, [4])
    grid = style_mix_grid(model, rows, cols, list(range(model.G.num_ws))).astype(int)
    for r in (1, 2):
        assert np.abs(grid[32 * r : 32 * (r + 1), 32:] - grid[:32, 32:]).max() <= 1


@pytest.mark.parametrize(
    ("rows", "cols", "kwargs", "says"),
    [
        ([1], [2], {"layers": [0, 8]}, "from 0 to 7"),
        ([1], [2], {"layers": []}, "--layers"),
        ([], [2], {}, "--rows"),
        ([1], list(range(33)), {}, "--cols"),
        ([1], [2], {"noise_mode": "x"}, "--noise"),
    ],
)
def test_bad_mixes_are_refused(model, tmp_path, rows, cols, kwargs, says):
    with pytest.raises(UserError, match=says):
        write_mix(model, rows, cols, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()
