"""The generate / morph / child / mix commands, through the real heroforge app."""

import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers.cli import user_error
from heroforge.commands import app


@pytest.fixture(scope="module")
def run():
    """The real heroforge app, with the raised UserError kept for inspection."""
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_generate(run, model_path, tmp_path):
    out = tmp_path / "out"
    result = run("generate", "--model", model_path, "--seeds", "0-2,42", "--outdir", out, "--grid")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0042.png"]
    assert "wrote 4 heroes" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--seeds", "3-"], "has no end"),
        (["--seeds", "1", "--trunc", "nan"], "--trunc"),
        (["--seeds", "1", "--noise", "loud"], "--noise"),
        (["--seeds", "1", "--class", "1"], "conditional"),
        (["--seeds", "1", "--device", "potato"], "not a device"),
    ],
)
def test_generate_refuses_bad_arguments(run, model_path, tmp_path, args, says):
    assert says in user_error(run("generate", "--model", model_path, "--outdir", tmp_path, *args))


def test_missing_model_and_unwritable_outdir(run, model_path, tmp_path):
    says = user_error(
        run("generate", "--model", tmp_path / "x", "--seeds", "1", "--outdir", tmp_path)
    )
    assert "no model at" in says
    (tmp_path / "file").write_text("in the way")
    outdir = tmp_path / "file" / "out"
    result = run("generate", "--model", model_path, "--seeds", "1", "--outdir", outdir)
    # a path under a file is the user's to change: exit 2 (a full disk would be 74)
    assert user_error(result) == f"cannot write to --outdir {outdir}: Not a directory"


def test_morph_child_and_mix(run, model_path, tmp_path):
    model = ["--model", model_path, "--outdir", tmp_path]
    result = run("morph", *model, "--seeds", "1,2", "--frames-per-step", "3", "--loop")
    assert result.exit_code == 0, result.output
    (gif,) = tmp_path.glob("morph-*.gif")
    assert Image.open(gif).n_frames == 6

    result = run("child", *model, "--parents", "1,2", "--mode", "coarse-from-a")
    assert result.exit_code == 0, result.output
    latent = tmp_path / "child-seed1-seed2-coarse-from-a16.latent.safetensors"
    assert latent.is_file()
    assert "panel:" in result.output

    result = run("morph", *model, "--seeds", f"{latent},3", "--frames-per-step", "2")
    assert result.exit_code == 0, result.output

    result = run("mix", *model, "--rows", "1,2", "--cols", "3", "--layers", "0-3")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "mix-layers0-3.png").size == (64, 96)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["morph", "--seeds", "1,2", "--grid", "2"], "ROWSxCOLS"),
        (["morph", "--seeds", "1"], "at least 2"),
        (["child", "--parents", "1,2,3"], "exactly two"),
        (["child", "--parents", "1,2", "--mode", "fine-from-a", "--weight", "0.2"], "blend"),
        (["mix", "--rows", "1", "--cols", "2", "--layers", "0-99"], "from 0 to 7"),
    ],
)
def test_other_commands_refuse_bad_arguments(run, model_path, tmp_path, args, says):
    assert says in user_error(run(*args, "--model", model_path, "--outdir", tmp_path))


def test_help_has_examples(run):
    for command in ("generate", "morph", "child", "mix"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.output


def test_wired_into_heroforge(cli, model_path, tmp_path):
    code, _, err = cli("generate", "--model", str(model_path), "--seeds", "a", "--outdir", "x")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "is not a seed" in err
    code, _, _ = cli(
        "generate", "--model", str(model_path), "--seeds", "1", "--outdir", str(tmp_path)
    )
    assert code == 0
    assert (tmp_path / "seed0001.png").is_file()


def test_the_python_api_in_three_lines(model_path):
    from heroforge.generate import generate_images, load_generator

    images = generate_images(load_generator(model_path), seeds=[1, 2, 3])
    assert [img.size for img in images] == [(32, 32)] * 3
    with pytest.raises(AttributeError):
        import heroforge.generate

        heroforge.generate.no_such_thing  # noqa: B018
