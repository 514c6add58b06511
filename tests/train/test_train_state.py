"""The typed run state keeps the JSON form checkpoints have always had: old ones resume."""

import json

from helpers.network_files import rewrite_network_file
from helpers.training import EVERY_PHASE
from heroforge import rundir
from heroforge.config import load_config
from heroforge.nets.loading import load_latest
from heroforge.train.run import resume, start
from heroforge.train.stability import Verdict
from heroforge.train.state import Best, MetricsResult, Progress

TICK = {"kimg": 0.032, "loss/G": 1.5, "loss/D": 1.3, "loss/D_fake": 0.7, "rt": 0.1,
        "augment_p": 0.0}  # fmt: skip
# "progress" as the checkpoints written before the typed state hold it (free "extra" keys)
OLD_PROGRESS = {
    "nimg": 32,
    "step": 1,
    "tick": 1,
    "tick_start_nimg": 32,
    "elapsed_s": 1.25,
    "extra": {
        "stability": {
            "ticks": [TICK],
            "fids": [[0.032, 50.0]],
            "given": {"nimg": 32, "verdict": "unstable", "reasons": ["FID is nan"]},
        },
        "metrics": {"fid": 50.0, "num_real": 240, "num_fake": 64, "kimg": 0.032},
        "best": {"fid": 50.0, "nimg": 32},
    },
}


def test_the_old_form_reads_into_types_and_writes_back_the_same():
    progress = Progress.from_json(OLD_PROGRESS)
    assert progress.best == Best(fid=50.0, nimg=32)
    assert progress.metrics == MetricsResult(0.032, {"fid": 50.0, "num_real": 240, "num_fake": 64})
    assert progress.stability.given == (32, Verdict(False, ("FID is nan",)))
    assert progress.stability.fids == [(0.032, 50.0)]
    assert json.dumps(progress.to_json()) == json.dumps(OLD_PROGRESS)
    fresh = Progress.from_json({**OLD_PROGRESS, "extra": {}})  # before the first tick
    assert (fresh.best, fresh.metrics, fresh.stability.ticks) == (None, None, [])


def test_a_checkpoint_in_the_old_form_resumes(tiny_archive, tmp_path):
    cfg = load_config("tiny-cpu", [*EVERY_PHASE, "train.tick_kimg=0.032",
                                   "train.checkpoint_kimg=0.032"])  # fmt: skip
    run_dir, _ = start(tiny_archive, cfg, tmp_path, total_kimg=0.032, log=lambda _: None)
    folder = run_dir / rundir.CHECKPOINTS
    # the old form, signed as heroforge signs sidecars now (an unsigned edit is a damaged file)
    rewrite_network_file(
        folder / rundir.checkpoint_name(32),
        lambda sidecar: sidecar["metadata"].__setitem__("progress", OLD_PROGRESS),
    )

    said: list[str] = []
    assert resume(run_dir, total_kimg=0.064, log=said.append) == (run_dir, "done")
    assert any("resumed" in line and "0.032 kimg" in line for line in said), said
    latest, problems = load_latest(folder)
    assert problems == []
    assert latest.path.name == rundir.checkpoint_name(64)
    extra = latest.meta["progress"]["extra"]
    assert extra["best"] == {"fid": 50.0, "nimg": 32}
    assert extra["metrics"] == OLD_PROGRESS["extra"]["metrics"]
    assert extra["stability"]["fids"] == [[0.032, 50.0]]
    assert [t["kimg"] for t in extra["stability"]["ticks"]] == [0.032, 0.064]
    assert latest.meta["progress"]["elapsed_s"] > 1.25  # the old session's time counts on
    assert (folder / rundir.checkpoint_name(32)).is_file()  # the best is never pruned
