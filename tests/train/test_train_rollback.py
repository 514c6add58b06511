"""A tiny run forced into instability: verdicts are recorded, `best` skips unstable snapshots,
and the rollback restores the best stable state exactly, then trains on with the new settings."""

import json

import pytest
import torch

from helpers.files import read_jsonl
from helpers.training import checkpoint_tensors, quiet
from heroforge.config import load_config
from heroforge.metrics import evaluate as evaluate_module
from heroforge.nets.loading import load_latest
from heroforge.nets.weights import load_networks
from heroforge.rundir import DISCARDED_STATS, list_checkpoints, read_run, write_config
from heroforge.train.rollback import adjusted_config
from heroforge.train.run import resume, start

STEPS = [
    "train.tick_kimg=0.032",
    "train.checkpoint_kimg=0.032",
    "train.keep_checkpoints=20",
    "train.r1_interval=2",  # so that R1's gamma matters within a few steps
]
FORCED = [  # D's loss on fakes is always "below 100": unstable as soon as 2 ticks are seen
    "metrics.enabled=true",
    "metrics.every_kimg=0.032",
    "stability.patience_ticks=2",
    "stability.fake_loss_below=100",
    "stability.rollback=true",
    "stability.max_rollbacks=1",
]


@pytest.mark.slow
def test_forced_instability_rolls_back_to_the_best_stable_snapshot(
    tiny_archive, tmp_path, monkeypatch
):
    fids = iter([50.0, 40.0, 30.0, 20.0, 10.0, 5.0])  # every later snapshot measures better

    def fake_evaluate(*_args, **_kwargs):
        return {"fid": next(fids)}

    monkeypatch.setattr(evaluate_module, "evaluate", fake_evaluate)
    cfg = load_config("tiny-cpu", [*STEPS, *FORCED])
    messages: list[str] = []
    run_dir, status = start(
        tiny_archive, cfg, tmp_path / "a", total_kimg=0.128, log=messages.append
    )
    assert status == "done"

    # verdicts: stable at 0.032 (one tick seen), unstable from 0.064 on; the rollback at 0.064
    stats = read_jsonl(run_dir / "stats.jsonl")
    verdicts = [(r["kimg"], r["verdict"]) for r in stats if r.get("event") == "verdict"]
    assert verdicts == [(0.032, "stable"), (0.064, "unstable"), (0.096, "unstable"),
                        (0.128, "unstable")]  # fmt: skip
    assert [r["kimg"] for r in stats if "tick" in r] == [0.032, 0.064, 0.096, 0.128]
    (event,) = [r for r in stats if r.get("event") == "rollback"]
    assert (event["kimg"], event["from_kimg"], event["number"]) == (0.032, 0.064, 1)
    assert "D's loss on fakes below 100" in event["reasons"][0]
    discarded = read_jsonl(run_dir / DISCARDED_STATS)
    assert [r["kimg"] for r in discarded if "tick" in r] == [0.064]
    assert {"verdict": "unstable"}.items() <= next(r for r in discarded if "verdict" in r).items()
    assert any(m.startswith("rollback 1: back from 0.064 to 0.032 kimg") for m in messages)
    assert any("max_rollbacks = 1 are used up" in m for m in messages)

    # best = the only stable snapshot, although the unstable ones measured better
    best = json.loads((run_dir / "checkpoints" / "best.json").read_text())
    assert best["file"] == "ckpt-000000000032.safetensors"
    latest, _ = load_latest(run_dir / "checkpoints")
    assert latest.meta["progress"]["extra"]["best"] == {"fid": 50.0, "nimg": 32}
    assert latest.meta["stability"]["verdict"] == "unstable"
    verdicts_in_files = {
        path.name[5:17]: load_networks(path).metadata["stability"]["verdict"]
        for path in list_checkpoints(run_dir / "checkpoints")
    }
    assert verdicts_in_files == {"000000000128": "unstable", "000000000096": "unstable",
                                 "000000000064": "unstable", "000000000032": "stable"}  # fmt: skip
    names = [p.name for p in list_checkpoints(run_dir / "checkpoints")]
    assert names == [f"ckpt-{n:012d}.safetensors" for n in (128, 96, 64, 32)]

    # the new settings are the run's config (a resume uses them) and run.json has the event
    run_cfg, run = read_run(run_dir)
    assert run_cfg.train == adjusted_config(cfg)[0].train
    assert run_cfg.train.r1_gamma == pytest.approx(2 * cfg.train.r1_gamma)
    assert [r["from_kimg"] for r in run["rollbacks"]] == [0.064]
    assert set(run["rollbacks"][0]["changes"]) == {"train.r1_gamma", "train.g_lr", "train.d_lr"}

    # exactly the state of 0.032, then the adjusted settings: the same weights as a run that
    # stops at 0.032 and is resumed with the adjusted config by hand
    plain = load_config("tiny-cpu", STEPS)
    other, _ = start(tiny_archive, plain, tmp_path / "b", total_kimg=0.032, log=quiet)
    write_config(other, adjusted_config(plain)[0])
    resume(other, total_kimg=0.128, log=quiet)
    a, b = checkpoint_tensors(run_dir), checkpoint_tensors(other)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
