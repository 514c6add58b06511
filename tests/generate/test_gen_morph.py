"""Morphs: frame counts, keys hit exactly, no jolt at key frames with cubic-w, closed loops."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from heroforge.errors import UserError
from heroforge.generate.latents import resolve_keys, save_latent
from heroforge.generate.morph import (
    frame_count,
    morph_frames,
    slerp_path,
    walk_ws,
    write_morph,
)
from heroforge.generate.video import check_format

STEP = 6  # frames per step: small, but enough to see the speed along a step


def frame_changes(frames):
    """Mean absolute pixel change from each frame to the next."""
    stack = np.stack(frames).astype(float)
    return np.abs(np.diff(stack, axis=0)).mean(axis=(1, 2, 3))


def test_frame_counts():
    assert frame_count(3, 10, loop=False) == 21  # two steps and the last key
    assert frame_count(3, 10, loop=True) == 30  # three steps back to the first key
    assert frame_count(2, 1, loop=False) == 2


@pytest.mark.parametrize("interp", ["cubic-w", "lerp-w", "slerp-z"])
def test_walks_pass_exactly_through_their_keys(model, interp):
    keys = resolve_keys(model, [3, 8, 21], truncation_psi=0.8)
    ws = walk_ws(model, keys, STEP, interp, loop=False, truncation_psi=0.8)
    assert ws.shape == (frame_count(3, STEP, False), model.G.num_ws, model.G.w_dim)
    for i, key in enumerate(keys):
        torch.testing.assert_close(ws[i * STEP], key.ws, rtol=1e-4, atol=1e-4)


def velocity_jump(ws, k):
    """How much the step out of frame k differs from the step into it (relative)."""
    before, after = ws[k] - ws[k - 1], ws[(k + 1) % len(ws)] - ws[k]
    return ((after - before).norm() / before.norm()).item()


def test_cubic_w_velocity_is_continuous_at_keys_and_lerp_w_is_not(model):
    keys = resolve_keys(model, [3, 8, 21])
    # Continuous velocity: the jump vanishes as frames get denser (like 1 / frames).
    jumps = {
        (interp, n): velocity_jump(walk_ws(model, keys, n, interp), n)
        for interp in ("cubic-w", "lerp-w")
        for n in (40, 160)
    }
    assert jumps["cubic-w", 160] < jumps["cubic-w", 40] / 3
    assert jumps["lerp-w", 160] > 0.5 * jumps["lerp-w", 40] > 0.1


def test_cubic_w_morph_is_smoothest_at_key_frames(model):
    frames = list(morph_frames(model, [resolve_keys(model, [3, 8, 21, 40])], STEP))
    assert len(frames) == frame_count(4, STEP, loop=False)
    changes = frame_changes(frames)
    at_keys = [changes[k * STEP + d] for k in (1, 2) for d in (-1, 0)]  # into and out of keys
    elsewhere = np.delete(changes, [k * STEP + d for k in (1, 2) for d in (-1, 0)])
    assert max(at_keys) <= elsewhere.max()


def test_a_loop_closes(model):
    keys = resolve_keys(model, [3, 8, 21])
    frames = list(morph_frames(model, [keys], STEP, loop=True))
    assert len(frames) == frame_count(3, STEP, loop=True)
    changes = frame_changes(frames)
    wrap = frame_changes([frames[-1], frames[0]])[0]
    assert 0 < wrap <= changes.max()  # the last frame leads into the first like any other
    # In w the wrap is a key like the others: the velocity jump there vanishes too.
    jumps = [velocity_jump(walk_ws(model, keys, n, loop=True), 0) for n in (40, 160)]
    assert jumps[1] < jumps[0] / 3


def test_slerp_keeps_the_angle_moving_evenly():
    points = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    seg, t = torch.zeros(3, dtype=torch.long), torch.tensor([0.0, 0.5, 1.0])
    path = slerp_path(points, seg, t, loop=False)
    angles = torch.atan2(path[:, 1], path[:, 0])
    torch.testing.assert_close(angles, torch.tensor([0.0, torch.pi / 4, torch.pi / 2]))
    same = slerp_path(torch.tensor([[1.0, 1.0], [2.0, 2.0]]), seg, t, loop=False)
    assert torch.isfinite(same).all()


def test_gif_grid_of_walks(model, tmp_path):
    path = write_morph(model, list(range(8)), tmp_path, frames_per_step=2, grid=(2, 2), loop=True)
    assert path.name == "morph-cubic-w-grid2x2-seed0-seed1-seed2-seed3-and4more.gif"
    gif = Image.open(path)
    assert gif.size == (64, 64)
    assert gif.n_frames == frame_count(2, 2, loop=True)


def test_mp4(model, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    path = write_morph(model, [1, 2], tmp_path, frames_per_step=3, fmt="mp4", fps=10)
    assert path.suffix == ".mp4"
    assert path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_mp4_without_imageio_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio", None)  # makes `import imageio` fail
    with pytest.raises(UserError, match=r"pip install 'heroforge\[video\]'"):
        check_format("mp4")


def test_latent_files_are_keys_for_w_walks_only(model, tmp_path):
    key = resolve_keys(model, [5])[0]
    latent = save_latent(tmp_path / "hero.latent.safetensors", key.ws)
    keys = resolve_keys(model, [latent, 6])
    assert keys[0].label == "hero"
    assert torch.equal(keys[0].ws, key.ws)
    assert walk_ws(model, keys, STEP).shape[0] == STEP + 1
    with pytest.raises(UserError, match="slerp-z needs seeds"):
        walk_ws(model, keys, STEP, "slerp-z")


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"keys": [1]}, "at least 2"),
        ({"interp": "zigzag"}, "--interp"),
        ({"frames_per_step": 0}, "--frames-per-step"),
        ({"frames_per_step": 1000, "keys": list(range(20))}, "at most"),
        ({"grid": (2, 2)}, r"give 8, 12, \.\.\. seeds \(a multiple of 4\), got 3"),
        ({"grid": (2, 2), "keys": [1, 2, 3, 4]}, "walks of at least 2 seeds each"),
        ({"fmt": "avi"}, "--format"),
        ({"fps": 0}, "--fps"),
    ],
)
def test_bad_morphs_are_refused_before_any_work(model, tmp_path, kwargs, says):
    args = {"keys": [1, 2, 3], **kwargs}
    with pytest.raises(UserError, match=says):
        write_morph(model, args.pop("keys"), tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()
