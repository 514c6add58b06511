"""AdaController: direction and size of each step, clamping, modes, resume, reduce hook."""

from __future__ import annotations

import json

import pytest
import torch

from heroforge.augment import AdaController
from heroforge.config import AugmentConfig
from heroforge.runtime.dist import distributed_sum

BATCH = 8
STEP = BATCH * 4 / (500 * 1000)  # batch * interval / (speed_kimg * 1000)


def run(ctrl: AdaController, logits: torch.Tensor, minibatches: int) -> list[float]:
    ps = []
    for _ in range(minibatches):
        ctrl.accumulate(logits)
        ps.append(ctrl.step(BATCH))
    return ps


def test_overfitting_raises_p_by_one_step_per_interval():
    ctrl = AdaController("ada", target=0.6, speed_kimg=500, interval=4)
    ps = run(ctrl, torch.ones(BATCH), 8)  # D is sure of every real: r_t = 1 > 0.6
    assert ps == [0.0, 0.0, 0.0, STEP, STEP, STEP, STEP, 2 * STEP]
    assert ctrl.rt == 1.0


def test_underfitting_lowers_p_and_the_target_itself_keeps_it():
    ctrl = AdaController("ada", target=0.6, speed_kimg=500, interval=4, p=0.5)
    assert run(ctrl, -torch.ones(BATCH), 4)[-1] == pytest.approx(0.5 - STEP, abs=1e-15)
    assert ctrl.rt == -1.0
    at_target = torch.tensor([1.0] * 8 + [-1.0] * 2)  # r_t = (8 - 2) / 10 = 0.6
    p = ctrl.p
    assert run(ctrl, at_target, 4)[-1] == p
    assert ctrl.rt == pytest.approx(0.6)


def test_p_is_clamped_to_the_unit_interval():
    fast = {"target": 0.6, "speed_kimg": 0.001, "interval": 1}  # one step is 8 >> 1
    up = AdaController("ada", p=0.9, **fast)
    assert run(up, torch.ones(BATCH), 1) == [1.0]
    down = AdaController("ada", p=0.1, **fast)
    assert run(down, -torch.ones(BATCH), 1) == [0.0]


def test_fixed_and_none_modes_keep_p_but_still_measure_rt():
    fixed = AdaController("fixed", p=0.3, interval=2)
    assert run(fixed, torch.ones(BATCH), 4) == [0.3] * 4
    assert fixed.rt == 1.0
    off = AdaController("none", p=0.3, interval=2)
    assert run(off, torch.ones(BATCH), 4) == [0.0] * 4


def test_an_interval_without_logits_leaves_p_alone():
    ctrl = AdaController("ada", interval=2, p=0.2)
    assert [ctrl.step(BATCH) for _ in range(4)] == [0.2] * 4
    assert ctrl.rt is None


def test_state_dict_round_trip_resumes_identically():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(BATCH, generator=g) + 0.5 for _ in range(20)]
    reference = AdaController("ada", interval=4, speed_kimg=1)
    for x in logits[:6]:  # stop in the middle of an interval
        reference.accumulate(x)
        reference.step(BATCH)
    state = json.loads(json.dumps(reference.state_dict()))  # a plain, serialisable dict
    resumed = AdaController("ada", interval=4, speed_kimg=1)
    resumed.load_state_dict(state)
    for x in logits[6:]:
        reference.accumulate(x)
        resumed.accumulate(x)
        assert resumed.step(BATCH) == reference.step(BATCH)
        assert resumed.rt == reference.rt
    assert resumed.state_dict() == reference.state_dict()


def test_state_dict_refuses_a_half_finished_minibatch_and_bad_states():
    ctrl = AdaController()
    ctrl.accumulate(torch.ones(4))
    with pytest.raises(RuntimeError, match="between accumulate"):
        ctrl.state_dict()
    ctrl.step(BATCH)
    state = ctrl.state_dict()
    with pytest.raises(ValueError, match="lacks p"):
        AdaController().load_state_dict({k: v for k, v in state.items() if k != "p"})
    with pytest.raises(ValueError, match="outside"):
        AdaController().load_state_dict(state | {"p": 1.5})


def test_reduce_hook_sees_each_minibatch_and_sums_across_processes():
    seen = []

    def other_rank_was_unsure(stats: torch.Tensor) -> torch.Tensor:
        seen.append(stats.tolist())
        return stats + torch.tensor([-BATCH, BATCH], dtype=stats.dtype)  # 8 negative logits

    ctrl = AdaController("ada", interval=2, p=0.5, reduce=other_rank_was_unsure)
    p = run(ctrl, torch.ones(BATCH), 2)[-1]
    assert seen == [[BATCH, BATCH], [BATCH, BATCH]]
    assert ctrl.rt == 0.0  # (8 - 8) / 16 over both ranks: below the target
    assert p == pytest.approx(0.5 - BATCH * 2 / (500 * 1000))


def test_built_from_the_augment_config_and_validated():
    ctrl = AdaController.from_config(AugmentConfig(target=0.7, speed_kimg=100, interval=2, p=0.1))
    assert (ctrl.mode, ctrl.target, ctrl.speed_kimg, ctrl.interval, ctrl.p) == (
        "ada",
        0.7,
        100,
        2,
        0.1,
    )
    with pytest.raises(ValueError, match="unknown augment mode"):
        AdaController("auto")
    with pytest.raises(ValueError, match="interval >= 1"):
        AdaController(interval=0)


def _rank_main(rank: int, init_file: str, results: dict) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        ctrl = AdaController("ada", interval=2, p=0.5, reduce=distributed_sum)
        logits = torch.ones(BATCH) if rank == 0 else -torch.ones(BATCH)
        ps = run(ctrl, logits, 2)
        results[rank] = (ps, ctrl.rt, ctrl.state_dict())
    finally:
        dist.barrier()  # a rank that leaves while its peer still talks to it aborts
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_take_the_same_decision_from_global_sums(tmp_path):
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank_main, args=(str(tmp_path / "init"), results), nprocs=2)
        results = dict(results)
    assert results[0] == results[1]  # every rank holds the same state
    ps, rt, _ = results[0]
    assert rt == 0.0  # 8 positive and 8 negative logits over both ranks
    assert ps[-1] == pytest.approx(0.5 - BATCH * 2 / (500 * 1000))
