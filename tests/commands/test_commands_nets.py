"""`heroforge nets summary` through the real app."""

import json

import pytest
from typer.testing import CliRunner

from heroforge.commands import app
from heroforge.errors import UserError


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["nets", *args])


def test_json_has_the_official_counts_and_a_breakdown(run):
    result = run("summary", "--preset", "superheroes-512", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["G"], summary["D"]) == (28_700_647, 28_982_849)
    assert summary["G_blocks"][-1]["name"] == "b512"
    assert summary["G_flops"] > 0


def test_table_lists_blocks_params_and_flops(run):
    result = run("summary", "--preset", "tiny-cpu", "--set", "data.resolution=64", "--c-dim", "3")
    assert result.exit_code == 0, result.output
    for text in ("mapping", "b64", "b4", "total", "FLOPs/img", "c_dim 3"):
        assert text in result.stdout


def test_help_has_examples(run):
    result = run("summary", "--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout
    assert "heroforge nets summary --preset superheroes-512" in result.stdout


@pytest.mark.parametrize(
    "args",
    [["--preset", "no-such-preset"], ["--set", "network.channel_max=-1"], ["--c-dim", "-1"]],
)
def test_user_mistakes_raise_user_errors(run, args):
    result = run("summary", *args)
    assert isinstance(result.exception, UserError)
