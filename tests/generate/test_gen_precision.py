"""--precision on generate, morph, child and mix: which type the top blocks draw in."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers.cli import user_error
from helpers.networks import make_generator
from heroforge.commands import app
from heroforge.errors import UserError
from heroforge.generate.model import load_generator
from heroforge.nets.weights import save_networks

# bf16 keeps 8 bits of mantissa: a picture drawn with it is a few grey levels from the fp32 one
# (measured on this net, seeds 0-15: at most 10, mean 0.3; two heroes differ by 74 on average).
BF16_MAX_LEVELS = 24
BF16_MEAN_LEVELS = 2.0


@pytest.fixture(scope="module")
def half_model(tmp_path_factory) -> Path:
    """The tiny net with its top two resolutions (16 and 32 px) in reduced precision."""
    gen, cfg = make_generator(overrides=["network.num_fp16_res=2"])
    path = tmp_path_factory.mktemp("half") / "tiny-half.safetensors"
    save_networks(path, {"G_ema": gen}, cfg)
    return path


@pytest.fixture(scope="module")
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def _pixels(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("seed*.png"))])


def _generate(run, model: Path, outdir: Path, *precision: str) -> np.ndarray:
    result = run("generate", "--model", model, "--seeds", "0-15", "--outdir", outdir, *precision)
    assert result.exit_code == 0, result.output
    return _pixels(outdir)


def test_bf16_draws_nearly_the_fp32_pictures_and_says_so(run, half_model, tmp_path):
    default = _generate(run, half_model, tmp_path / "auto")
    fp32 = _generate(run, half_model, tmp_path / "fp32", "--precision", "fp32")
    bf16 = _generate(run, half_model, tmp_path / "bf16", "--precision", "bf16")
    assert np.array_equal(default, fp32)  # auto on the CPU is fp32: the official pictures
    diff = np.abs(bf16.astype(int) - fp32.astype(int))
    assert diff.max() > 0  # bf16 did run
    assert diff.max() <= BF16_MAX_LEVELS
    assert diff.mean() <= BF16_MEAN_LEVELS
    others = np.abs(fp32[1:].astype(int) - fp32[:-1].astype(int))
    assert others.mean() > 4 * diff.mean()  # a bound that another hero would break
    for name in ("auto", "fp32", "bf16"):
        recorded = Image.open(tmp_path / name / "seed0003.png").text["precision"]
        assert recorded == ("fp32" if name == "auto" else name)


def test_the_log_names_the_precision(run, half_model, tmp_path):
    result = run(
        "generate", "--model", half_model, "--seeds", "1", "--outdir", tmp_path, "--precision",
        "bf16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "on cpu, bf16" in result.output


def test_morph_child_and_mix_take_the_precision(run, half_model, tmp_path):
    def drawn(command: str, *args: str, precision: str) -> Path:
        outdir = tmp_path / f"{command}-{precision}"
        common = ["--model", half_model, "--outdir", outdir, "--precision", precision]
        result = run(command, *common, *args)
        assert result.exit_code == 0, result.output
        assert f"on cpu, {precision}" in result.output
        return outdir

    for precision in ("fp32", "bf16"):
        child = drawn("child", "--parents", "1,2", precision=precision)
        panel = Image.open(child / "child-seed1-seed2-blend50-panel.png")
        assert panel.text["precision"] == precision
        mix = drawn("mix", "--rows", "1,2", "--cols", "3", "--layers", "0-3", precision=precision)
        assert Image.open(mix / "mix-layers0-3.png").text["precision"] == precision
        morph = drawn("morph", "--seeds", "1,2", "--frames-per-step", "3", precision=precision)
        (gif,) = morph.glob("morph-*.gif")
        assert Image.open(gif).n_frames == 4
    fp32, bf16 = (
        np.asarray(Image.open(tmp_path / f"child-{p}" / "child-seed1-seed2-blend50.png"))
        for p in ("fp32", "bf16")
    )
    assert 0 < np.abs(bf16.astype(int) - fp32.astype(int)).max() <= BF16_MAX_LEVELS


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--seeds", "1"],
        ["morph", "--seeds", "1,2"],
        ["child", "--parents", "1,2"],
        ["mix", "--rows", "1", "--cols", "2"],
    ],
)
def test_fp16_on_the_cpu_is_refused_in_one_line(run, half_model, tmp_path, command):
    outdir = tmp_path / "out"
    args = [*command, "--model", half_model, "--outdir", outdir, "--device", "cpu"]
    says = user_error(run(*args, "--precision", "fp16"))
    assert says == "--precision fp16 needs a CUDA GPU; on the CPU use bf16 (faster) or fp32"
    assert not outdir.exists()  # refused before anything was written
    says = user_error(run(*args, "--precision", "fp8"))
    assert says == "--precision 'fp8' is not one of auto, fp32, bf16, fp16"


def test_a_network_without_reduced_blocks_stays_fp32_with_a_note(run, model_path, tmp_path):
    fp32 = _generate(run, model_path, tmp_path / "fp32", "--precision", "fp32")
    result = run(
        "generate", "--model", model_path, "--seeds", "0-15", "--outdir", tmp_path / "bf16",
        "--precision", "bf16",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "runs every block in fp32 (num_fp16_res = 0)" in result.output
    assert "on cpu, fp32" in result.output
    assert np.array_equal(_pixels(tmp_path / "bf16"), fp32)


def test_load_generator_sets_and_reports_the_precision(half_model):
    assert load_generator(half_model, "cpu").precision == "fp32"
    assert load_generator(half_model, "cpu", "bf16").precision == "bf16"
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        load_generator(half_model, "cpu", "fp16")
