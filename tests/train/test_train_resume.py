"""Training survives kill -9, SIGTERM, damaged checkpoints and full disks, bit for bit."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.training import EVERY_PHASE, checkpoint_tensors, only_run, quiet, tick_kimgs
from heroforge.config import load_config
from heroforge.errors import SaveError, UserError
from heroforge.nets.loading import load_latest
from heroforge.rundir import list_checkpoints, mark_best
from heroforge.train import checkpoint as ckpt
from heroforge.train.run import resume, start

QUICK = [*EVERY_PHASE, "train.tick_kimg=0.032", "train.checkpoint_kimg=0.032"]
QUICK += ["train.keep_checkpoints=20"]
TARGET = 0.128  # 16 steps of 8 images


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "heroforge", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


def _train_cli(archive: Path, outdir: Path, *extra: str) -> subprocess.Popen:
    sets = [arg for s in QUICK for arg in ("--set", s)]
    return _cli("train", "--data", str(archive), "--preset", "tiny-cpu", "--outdir", str(outdir),
                "--kimg", str(TARGET), *sets, *extra)  # fmt: skip


# fp32, and bf16 top blocks (what "auto" picks on a CPU with native bf16): on one machine
# a bf16 run is as reproducible as an fp32 one
BF16 = ["--set", "network.num_fp16_res=2", "--set", "train.precision=bf16"]


@pytest.mark.slow
@pytest.mark.parametrize("precision", [[], BF16], ids=["fp32", "bf16"])
def test_kill9_then_resume_is_bit_identical(tiny_archive, tmp_path, precision):
    whole = _train_cli(tiny_archive, tmp_path / "whole", *precision)
    assert whole.wait(timeout=300) == 0, whole.stdout.read().decode()

    killed = _train_cli(tiny_archive, tmp_path / "killed", *precision)
    deadline = time.time() + 300
    while time.time() < deadline:
        runs = list((tmp_path / "killed").glob("*/checkpoints/ckpt-*.json"))
        if len(runs) >= 2:  # at least two checkpoints: kill in the middle of the run
            break
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    run_dir = only_run(tmp_path / "killed")
    stopped_at = len(list_checkpoints(run_dir / "checkpoints"))
    assert 2 <= stopped_at < 4  # it really died before the end

    resume(run_dir, log=quiet)
    assert json.loads((run_dir / "run.json").read_text())["precision"] == (
        "bf16" if precision else "fp32"
    )
    a = checkpoint_tensors(only_run(tmp_path / "whole"), with_extra=True)
    b = checkpoint_tensors(run_dir, with_extra=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    kimg = tick_kimgs(run_dir)
    assert kimg == sorted(set(kimg)) == tick_kimgs(only_run(tmp_path / "whole"))


@pytest.mark.slow
def test_sigterm_checkpoints_and_exits_resumable(tiny_archive, tmp_path):
    proc = _train_cli(tiny_archive, tmp_path, "--set", "train.checkpoint_kimg=100", "--kimg", "100")
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob("*/stats.jsonl")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    start_wait = time.time()
    code = proc.wait(timeout=120)
    output = proc.stdout.read().decode()
    assert code == 75, output
    assert time.time() - start_wait < 30
    run_dir = only_run(tmp_path)
    assert f"go on with: heroforge train --resume {run_dir}" in output
    checkpoint, problems = load_latest(run_dir / "checkpoints")
    assert not problems
    assert checkpoint.meta["progress"]["nimg"] > 0
    assert "received SIGTERM" in (run_dir / "stats.jsonl").read_text()


def test_damaged_newest_checkpoint_falls_back(tiny_archive, tmp_path):
    cfg = load_config("tiny-cpu", QUICK)
    run_dir, status = start(tiny_archive, cfg, tmp_path, total_kimg=0.064, log=quiet)
    assert status == "done"
    newest, older = list_checkpoints(run_dir / "checkpoints")[:2]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    checkpoint, problems = load_latest(run_dir / "checkpoints")
    assert checkpoint.path == older
    assert problems
    assert "corrupted or half-written" in problems[0]
    messages = []
    resume(run_dir, total_kimg=0.096, log=messages.append)
    assert any("skipped a damaged checkpoint" in m for m in messages)
    assert any(f"resumed {run_dir}" in m for m in messages)


def test_full_disk_keeps_the_previous_checkpoint(tiny_archive, tmp_path, monkeypatch):
    cfg = load_config("tiny-cpu", QUICK)
    real_save = ckpt.save_networks
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_networks", fail_second)
    with pytest.raises(SaveError, match=r"ckpt-000000000064\.safetensors: No space left on device"):
        start(tiny_archive, cfg, tmp_path, total_kimg=0.096, log=quiet)
    (run_dir,) = list(tmp_path.iterdir())
    names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
    assert names == ["ckpt-000000000032.safetensors"]  # stopped: no training on for nothing
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    checkpoint, problems = load_latest(run_dir / "checkpoints")
    assert not problems
    assert checkpoint.meta["progress"]["nimg"] == 32


def test_a_final_checkpoint_that_cannot_be_written_is_an_error(tiny_archive, tmp_path, monkeypatch):
    cfg = load_config("tiny-cpu", QUICK)

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_networks", no_space)
    with pytest.raises(SaveError, match=r"ckpt-000000000032\.safetensors: No space left on device"):
        start(tiny_archive, cfg, tmp_path, total_kimg=0.032, log=quiet)


def test_resume_refuses_another_dataset_or_network(tiny_archive, tmp_path, synth_set):
    cfg = load_config("tiny-cpu", QUICK)
    run_dir, _ = start(tiny_archive, cfg, tmp_path / "runs", total_kimg=0.032, log=quiet)
    other = tmp_path / "other"
    other.mkdir()
    for img in sorted((tiny_archive.parent / "prepared" / "images").iterdir())[:10]:
        (other / img.name).write_bytes(img.read_bytes())
    with pytest.raises(UserError, match="dataset differs"):
        resume(run_dir, data=other, log=quiet)
    text = (run_dir / "config.toml").read_text().replace("channel_max = 64", "channel_max = 32")
    (run_dir / "config.toml").write_text(text)
    with pytest.raises(UserError, match="another network config"):
        resume(run_dir, log=quiet)


def test_resume_of_a_finished_run_says_so_and_keeps_its_target(tiny_archive, tmp_path):
    cfg = load_config("tiny-cpu", QUICK)
    run_dir, _ = start(tiny_archive, cfg, tmp_path / "runs", total_kimg=0.06, log=quiet)
    for kimg in (None, 0.06, 0.032):  # it ended at 0.064, the first whole batch past 0.06
        said: list[str] = []
        assert resume(run_dir, total_kimg=kimg, log=said.append) == (run_dir, "done")
        assert any("0.064 kimg reaches the target" in line for line in said), said
        assert json.loads((run_dir / "run.json").read_text())["total_kimg"] == 0.06


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kimg", "0"], "--kimg must be a positive number"),
        (["--kimg", "-1"], "--kimg must be a positive number"),
        (["--kimg", "inf"], "--kimg must be a positive number"),
        (["--resume", "RUN", "--preset", "tiny-cpu"], "--resume takes the run's own config"),
        (["--resume", "RUN", "--outdir", "elsewhere"], "--resume takes the run's own config"),
        (["--resume", "RUN", "--cycles", "3"], "--resume takes the run's own config"),
        (["--resume", "RUN", "--cycle-kimg", "5"], "--resume takes the run's own config"),
    ],
)
def test_train_options_that_cannot_work_are_refused(cli, tmp_path, args, message):
    code, _, err = cli("train", *[str(tmp_path) if a == "RUN" else a for a in args])
    assert code == 2
    assert message in err
    assert not list(tmp_path.iterdir())
    assert not Path("runs").exists()


def test_an_outdir_that_is_a_file_is_refused(cli, tiny_archive, tmp_path):
    taken = tmp_path / "runs.zip"
    taken.write_bytes(b"x")
    code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                       "--outdir", str(taken))  # fmt: skip
    assert code == 2
    assert "is a file; give a folder for the runs" in err


def test_a_snapshot_chosen_as_best_survives_pruning(tiny_archive, tmp_path):
    """A user's "use as best" (web page) names an old checkpoint: training goes on pruning old
    checkpoints, but never the one best.json names."""
    cfg = load_config("tiny-cpu", [*QUICK, "train.keep_checkpoints=1"])
    run_dir, _ = start(tiny_archive, cfg, tmp_path, total_kimg=0.032, log=quiet)
    folder = run_dir / "checkpoints"
    (chosen,) = list_checkpoints(folder)
    mark_best(folder, chosen.name)
    resume(run_dir, total_kimg=0.096, log=quiet)
    names = [p.name for p in list_checkpoints(folder)]
    assert names[0] != chosen.name
    assert chosen.name in names
    assert len(names) == 2
    assert json.loads((folder / "best.json").read_text())["file"] == chosen.name
