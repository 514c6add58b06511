"""Damaged, edited and half-written checkpoints through `heroforge train --resume` and
`heroforge generate` on real runs (issue 26 points 4, 5 and 8)."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.network_files import rewrite_network_file
from helpers.networks import make_generator
from helpers.training import quiet
from heroforge.config import load_config
from heroforge.nets.weights import load_networks
from heroforge.rundir import checkpoint_name, list_checkpoints, sidecar_path
from heroforge.train import checkpoint as ckpt
from heroforge.train.run import start

SETTINGS = ["train.tick_kimg=0.032", "train.checkpoint_kimg=0.032", "train.keep_checkpoints=3"]


@pytest.fixture(scope="module")
def trained(tiny_archive, tmp_path_factory) -> Path:
    """A run with checkpoints at 32 and 64 images (keep_checkpoints = 3); copy it to change it."""
    cfg = load_config("tiny-cpu", SETTINGS)
    run_dir, status = start(tiny_archive, cfg, tmp_path_factory.mktemp("runs"), 0.064, log=quiet)
    assert status == "done"
    return run_dir


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / trained.name))


def _files(folder: Path, nimg: int) -> tuple[Path, Path]:
    path = folder / checkpoint_name(nimg)
    return path, sidecar_path(path)


@pytest.mark.slow
def test_an_edited_counter_is_a_damaged_checkpoint_and_the_run_goes_back_one(run_dir, cli):
    """'"nimg": 64' made '"nimg": 84' in the newest sidecar resumed "at 0.084 kimg" silently."""
    folder = run_dir / "checkpoints"
    newest, sidecar = _files(folder, 64)
    sidecar.write_text(sidecar.read_text().replace('"nimg": 64', '"nimg": 84'))
    code, _, log = cli("train", "--resume", str(run_dir), "--kimg", "0.064")  # log: stderr
    assert code == 0, log
    lines = [line for line in log.splitlines() if "skipped a damaged checkpoint" in line]
    assert len(lines) == 1, log
    assert "ckpt-000000000064.json was changed after" in lines[0]
    assert "moved to damaged/ckpt-000000000064.safetensors" in lines[0]
    assert "at 0.032 kimg from ckpt-000000000032.safetensors" in log
    assert '"nimg": 84' in (folder / "damaged" / sidecar.name).read_text()
    retrained = load_networks(newest)  # trained again from 32 to 64
    assert retrained.metadata["progress"]["nimg"] == 64


def _kill_during_a_write(path: Path) -> None:
    """A process killed with -9 while fileio.atomic_file writes path, as a trainer may be."""
    script = f"""
        import os, signal
        from heroforge.fileio import atomic_file
        with atomic_file({str(path)!r}) as f:
            f.write(b"half a checkpoint")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], timeout=120)
    assert proc.returncode == -9


@pytest.mark.slow
def test_a_damaged_checkpoint_is_set_aside_and_never_outlives_the_good_ones(run_dir, cli):
    """A damaged newest checkpoint off the checkpoint grid (a stop's checkpoint at 80 images):
    pruning with keep_checkpoints = 3 used to keep it and delete the good 64; a killed write's
    temp file stayed for ever."""
    folder = run_dir / "checkpoints"
    for good, damaged in zip(_files(folder, 64), _files(folder, 80), strict=True):
        shutil.copy(good, damaged)
    damaged_tensors = _files(folder, 80)[0]
    data = bytearray(damaged_tensors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged_tensors.write_bytes(bytes(data))
    (folder / "latest.json").write_text(json.dumps({"file": damaged_tensors.name}))
    _kill_during_a_write(folder / checkpoint_name(96))
    (temp,) = folder.glob(".ckpt-*.tmp")

    code, _, log = cli("train", "--resume", str(run_dir), "--kimg", "0.128")
    assert code == 0, log
    assert f"removed {temp.name}, left by a write that was killed" in log
    assert "moved to damaged/ckpt-000000000080.safetensors" in log
    assert not temp.exists()
    names = [p.name for p in list_checkpoints(folder)]
    assert names == [checkpoint_name(n) for n in (128, 96, 64)]
    for path in list_checkpoints(folder):
        load_networks(path)  # all three good
    assert sorted(p.name for p in (folder / "damaged").iterdir()) == [
        "ckpt-000000000080.json",
        "ckpt-000000000080.safetensors",
    ]


def test_pruning_keeps_the_checkpoint_just_written_whatever_is_named_later(tmp_path):
    """A damaged checkpoint named later than the newest good one (left in place) must not push
    the newest good one out: with keep = 1 the one just written used to be deleted at once."""
    gen, cfg = make_generator()
    later, later_sidecar = _files(tmp_path, 200)
    later.write_bytes(b"damaged")
    later_sidecar.write_text("{}")
    path = ckpt.save_checkpoint(tmp_path, 100, {"G": gen}, cfg, 0, {}, {}, keep=1)
    assert path.is_file()
    assert load_networks(path).metadata["nimg"] == 100


def test_a_sidecar_claiming_a_huge_network_fails_in_one_line_at_low_memory(trained, tmp_path):
    """c_dim = 8,000,000 next to a real checkpoint (re-signed, as a hostile file would be) made
    `generate --model` reach 4.26 GB before its error. The peak memory of the generate process
    is read by a parent of its own (getrusage counts a process's waited-for children)."""
    path = tmp_path / "model.safetensors"
    for source, dest in zip(
        _files(trained / "checkpoints", 32), (path, sidecar_path(path)), strict=True
    ):
        shutil.copy(source, dest)
    rewrite_network_file(path, lambda sidecar: sidecar.update(c_dim=8_000_000))
    command = [sys.executable, "-m", "heroforge", "generate", "--model", str(path),
               "--seeds", "0", "--outdir", str(tmp_path / "out"), "--device", "cpu"]  # fmt: skip
    parent = f"""
        import json, resource, subprocess
        proc = subprocess.run({command!r}, capture_output=True, text=True)
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(json.dumps({{"code": proc.returncode, "err": proc.stderr, "peak_kb": peak_kb}}))
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(parent)], capture_output=True,
                          text=True, timeout=300, check=True)  # fmt: skip
    result = json.loads(done.stdout)
    assert result["code"] == 2, result
    (line,) = result["err"].strip().splitlines()
    assert "mapping.embed.weight" in line
    assert result["peak_kb"] < 1_000_000, result  # a build of the claim would take 4 GB
