"""Shared fixtures: one synthetic hero set per test session, and a CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heroforge.commands import main
from heroforge.data.synth import synthesize

SYNTH_SEED = 3
SYNTH_COUNT = 240


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """pytest-xdist runs two workers on two cores: two torch threads each would make four
    threads wait for each other (measured: 5x slower training steps under load)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synth_set(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A synthetic set big enough to hold every kind, format and background."""
    out = tmp_path_factory.mktemp("synth") / "set"
    synthesize(out, SYNTH_COUNT, seed=SYNTH_SEED, workers=2)
    labels = json.loads((out / "labels.json").read_text())["images"]
    return out, labels


@pytest.fixture
def cli(capsys):
    """Run `heroforge ARGS...` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def tiny_archive(synth_set, tmp_path_factory) -> Path:
    """A 32 px training archive of prepared synthetic heroes (the tiny-cpu preset's size)."""
    from heroforge.config import load_config
    from heroforge.data.archive import write_archive
    from heroforge.data.prepare import prepare

    folder, _ = synth_set
    work = tmp_path_factory.mktemp("tiny")
    prepare(folder / "raw", work / "prepared", load_config("tiny-cpu").prepare, workers=2)
    write_archive(work / "prepared", work / "tiny.zip")
    return work / "tiny.zip"
