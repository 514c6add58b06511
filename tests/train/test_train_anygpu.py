"""A run resumed on another number of processes computes what the uninterrupted run does.

The global minibatch of 8 images is cut in chunks (of 4, or of 2); a chunk fixes its images,
its random draws and its minibatch-std groups, and a resume on another process count keeps the
chunks and only shares them out differently. The sums are grouped differently, though: D adds
its fakes' and its reals' gradients one after the other, a process adds its chunks one by one,
and the processes add their totals. Over two processes that is (f0 + r0) + (f1 + r1), in one
((f0 + r0) + f1) + r1: float32 rounds these differently in the last bits, so the tests bound
the difference instead of asking for bit-identical weights (a resume on the same count is
bit-identical: test_train_resume.py).
"""

import json
import os
import tomllib

import pytest
import torch
import torch.multiprocessing as mp

from helpers.training import (
    EVERY_PHASE,
    become_rank,
    checkpoint_tensors,
    free_port,
    only_run,
    quiet,
)
from heroforge.config import load_config
from heroforge.errors import ConfigError
from heroforge.rundir import write_config, write_run_json
from heroforge.runtime.dist import leave_process
from heroforge.train.run import resume, start

HALF, WHOLE = 0.064, 0.128  # 8 and 16 steps of 8 images; the stop is at HALF
# "Differs only by rounding" is measured against a yardstick, not a fixed number: a GAN at
# tiny-cpu's rates amplifies a last-bit difference step after step, and by how much depends on
# the data (this test measured 3e-5 of a tensor's largest value, then 1.9e-3 once the tiny
# archive changed). The yardstick: the two uninterrupted runs with the same chunks on one
# process and on two, which differ in nothing but the order of their float sums, for all 16
# steps. A resume on another count sums differently for its last 8 steps only, so it may be no
# further from its uninterrupted run than that pair, within a margin for chaos itself.
MARGIN = 2
# Style mixing off: it amplifies a last-bit difference fastest (16 steps, every phase: 0.07;
# without style mixing below 1e-3, on the tiny_archive of 2026-12-06).
STEPS = [*EVERY_PHASE, "train.style_mixing=0", "train.tick_kimg=0.032", "train.checkpoint_kimg=1"]
STEPS += ["train.r1_interval=2"]


def _config(chunk: int, gpus: int):
    return load_config("tiny-cpu", [*STEPS, f"train.gpus={gpus}", f"train.batch_gpu={chunk}"])


def _worker(rank: int, port: int, archive: str, where: str, chunk: int, kimg: float) -> None:
    """One of two gloo processes: starts a run in the folder `where` (to kimg) or, if `where`
    is a run folder already, resumes it on two processes (to WHOLE)."""
    become_rank(rank, 2, port)
    if os.path.exists(os.path.join(where, "run.json")):
        resume(where, total_kimg=WHOLE, log=quiet, gpus=2)
    else:
        start(archive, _config(chunk, 2), where, total_kimg=kimg, log=quiet)
    leave_process(0)  # as `heroforge train` ends a process of a group


def _on_two_processes(archive, where, chunk: int, kimg: float = WHOLE) -> None:
    mp.spawn(_worker, args=(free_port(), str(archive), str(where), chunk, kimg), nprocs=2)


@pytest.fixture(scope="module")
def uninterrupted(tiny_archive, tmp_path_factory):
    """The final state of runs never stopped, by (chunk size, processes): chunks of 4 and of 2
    images, each on one process and on two."""
    out = tmp_path_factory.mktemp("uninterrupted")
    runs = {}
    for chunk in (4, 2):
        _on_two_processes(tiny_archive, out / f"{chunk}-on-2", chunk=chunk)
        start(tiny_archive, _config(chunk, 1), out / f"{chunk}-on-1", total_kimg=WHOLE, log=quiet)
        for gpus in (1, 2):
            run_dir = only_run(out / f"{chunk}-on-{gpus}")
            runs[chunk, gpus] = checkpoint_tensors(run_dir, with_extra=True)
    return runs


def _worst_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """The largest difference of any value, relative to the largest value of its tensor."""
    assert a.keys() == b.keys()
    return max(((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-6)).item() for k in a)


def _rounding(uninterrupted, chunk: int) -> float:
    """How far summing in another order alone takes the run with this chunk size (at least a
    float32 step, should the two orders round alike)."""
    return max(_worst_difference(uninterrupted[chunk, 1], uninterrupted[chunk, 2]), 1e-6)


@pytest.mark.slow
def test_two_processes_resumed_on_one_differ_only_by_rounding(
    tiny_archive, tmp_path, uninterrupted
):
    _on_two_processes(tiny_archive, tmp_path, chunk=4, kimg=HALF)
    run_dir = only_run(tmp_path)
    resume(run_dir, total_kimg=WHOLE, log=quiet, gpus=1)
    worst = _worst_difference(checkpoint_tensors(run_dir, with_extra=True), uninterrupted[4, 2])
    assert worst <= MARGIN * _rounding(uninterrupted, 4)
    # the yardstick tells: runs with other chunks (2 images, not 4) are far further apart
    assert _worst_difference(uninterrupted[2, 1], uninterrupted[4, 2]) > 10 * _rounding(
        uninterrupted, 4
    )
    # train.gpus is what the run trains on now; the chunk size is written out
    train = tomllib.loads((run_dir / "config.toml").read_text())["train"]
    assert (train["gpus"], train["batch_gpu"]) == (1, 4)
    resumes = json.loads((run_dir / "run.json").read_text())["resumes"]
    assert [(r["gpus"], r["kimg"]) for r in resumes] == [(1, HALF)]


@pytest.mark.slow
def test_one_process_resumed_on_two_differs_only_by_rounding(tiny_archive, tmp_path, uninterrupted):
    start(tiny_archive, _config(2, 1), tmp_path, total_kimg=HALF, log=quiet)
    run_dir = only_run(tmp_path)
    _on_two_processes(tiny_archive, run_dir, chunk=2)
    worst = _worst_difference(checkpoint_tensors(run_dir, with_extra=True), uninterrupted[2, 1])
    assert worst <= MARGIN * _rounding(uninterrupted, 2)
    resumes = json.loads((run_dir / "run.json").read_text())["resumes"]
    assert [(r["gpus"], r["kimg"]) for r in resumes] == [(2, HALF)]


def _run_folder(tmp_path, cfg) -> None:
    write_config(tmp_path, cfg)
    write_run_json(tmp_path, {"data": "none.zip", "dataset_fingerprint": "", "total_kimg": 1})


def test_a_count_the_chunks_do_not_split_over_is_refused(tmp_path):
    _run_folder(tmp_path, _config(2, 2))  # 4 chunks of 2 images
    with pytest.raises(ConfigError, match=r"in 4 chunks of 2: .* 1, 2, 4 GPUs .*not 3"):
        resume(tmp_path, log=quiet, gpus=3)


def test_the_cli_resumes_with_gpus_and_refuses_a_count_that_does_not_split(cli, tmp_path):
    _run_folder(tmp_path, _config(4, 1))  # 2 chunks of 4 images
    code, _, err = cli("train", "--resume", str(tmp_path), "--gpus", "4")
    assert code == 2
    assert "in 2 chunks of 4: it can go on with 1, 2 GPUs (processes), not 4" in err


def test_on_gpus_keeps_the_chunks_and_shares_them_out():
    cfg = load_config("superheroes-512")  # 8 GPUs, batch 64, batch_gpu 0: 8 chunks of 8
    assert cfg.train.gpu_counts() == [1, 2, 4, 8]
    on_two = cfg.on_gpus(2)
    assert (on_two.train.gpus, on_two.train.images_per_step, on_two.train.chunks) == (2, 8, 8)
    assert on_two.network == cfg.network
    back = on_two.on_gpus(8)
    assert (back.train.gpus, back.train.images_per_step) == (8, 8)
