"""The stability detector on synthetic histories: each failure of the reference run, and health."""

import math

import pytest

from heroforge.config import ConfigError, StabilityConfig, load_config
from heroforge.train.rollback import adjusted_config
from heroforge.train.stability import StabilityHistory, judge

CFG = StabilityConfig(patience_ticks=4, fid_patience=3, fid_margin=0.1)


def _tick(kimg: float, **values: float | None) -> dict:
    healthy = {"loss/G": 1.1, "loss/D": 1.2, "loss/D_fake": 0.6, "rt": 0.6, "augment_p": 0.3}
    return {"kimg": kimg, **healthy, **values}


def test_a_healthy_run_is_stable():
    ticks = [_tick(i) for i in range(20)]
    verdict = judge(ticks, [80.0, 60.0, 50.0, 52.0, 49.0], CFG)
    assert verdict.stable
    assert verdict.reasons == ()
    assert verdict.to_dict() == {"verdict": "stable", "reasons": []}


def test_d_winning_on_fakes_for_patience_ticks_is_unstable():
    ticks = [_tick(i) for i in range(10)] + [
        _tick(10 + i, **{"loss/D_fake": 0.01}) for i in range(4)
    ]
    verdict = judge(ticks, [], CFG)
    assert not verdict.stable
    assert verdict.label == "unstable"
    assert len(verdict.reasons) == 1
    assert "D's loss on fakes below 0.05 for 4 ticks" in verdict.reasons[0]
    # one tick fewer, or one healthy tick inside the stretch: not yet
    assert judge(ticks[:-1], [], CFG).stable
    assert judge([*ticks[:-2], _tick(99), ticks[-1]], [], CFG).stable
    # D bouncing back before the verdict does not hide the stretch (the tiny 8x-lr run)
    bounced = [*ticks, _tick(20, **{"loss/D_fake": 2.3}), _tick(21)]
    assert "for 4 ticks (at most 0.01)" in judge(bounced, [], CFG).reasons[0]


def test_rt_pinned_counts_only_while_p_is_saturated():
    pinned = [_tick(i, rt=0.97, augment_p=0.9) for i in range(4)]
    assert "r_t above 0.9 with ADA p above 0.8" in judge(pinned, [], CFG).reasons[0]
    catching_up = [_tick(i, rt=0.97, augment_p=0.2) for i in range(4)]  # ADA still raising p
    assert judge(catching_up, [], CFG).stable
    no_rt_yet = [_tick(i, rt=None, augment_p=0.9) for i in range(4)]
    assert judge(no_rt_yet, [], CFG).stable


def test_fid_rising_over_the_best_for_n_measurements_is_unstable():
    assert judge([], [60.0, 40.0, 45.0, 47.0], CFG).stable  # the best is one of the 3
    verdict = judge([], [60.0, 40.0, 45.0, 47.0, 50.0], CFG)
    assert not verdict.stable
    assert "over the best 40.00 for 3 measurements" in verdict.reasons[0]
    assert judge([], [60.0, 40.0, 45.0, 47.0, 41.0], CFG).stable  # came back near the best
    assert judge([], [90.0, 80.0, 70.0], CFG).stable  # falling is fine


def test_non_finite_losses_or_fid_are_unstable_at_once():
    ticks = [_tick(0), _tick(1, **{"loss/G": math.nan})]
    verdict = judge(ticks, [], CFG)
    assert not verdict.stable
    assert verdict.reasons == ("non-finite loss/G at 1 kimg",)
    assert not judge([_tick(0, **{"loss/D": math.inf})], [], CFG).stable
    assert judge([], [50.0, math.nan], CFG).reasons[0] == "FID is nan"


def test_several_signals_give_several_reasons():
    ticks = [_tick(i, **{"loss/D_fake": 0.0}, rt=1.0, augment_p=1.0) for i in range(4)]
    assert len(judge(ticks, [10.0, 20.0, 20.0, 20.0], CFG).reasons) == 3


def test_history_carries_patience_minus_one_ticks_over_a_verdict():
    history = StabilityHistory()
    for i in range(3):
        history.remember_tick({**_tick(i), "img_per_s": 5.0, "loss/D_fake": 0.0})
    history.remember_fid(1.0, 30.0)
    assert "img_per_s" not in history.ticks[0]
    verdict = history.judge(CFG)
    assert verdict.stable  # 3 bad ticks of 4
    history.give(3, verdict, CFG)
    assert [t["kimg"] for t in history.ticks] == [0, 1, 2]
    history.remember_tick({**_tick(3), "loss/D_fake": 0.0})  # the stretch spans the verdict
    verdict = history.judge(CFG)
    assert not verdict.stable
    history.give(4, verdict, CFG)
    for i in range(4, 7):
        history.remember_tick(_tick(i))
    assert history.judge(CFG).stable  # only 2 bad ticks carried over, then healthy
    assert history.fids == [(1.0, 30.0)]
    assert StabilityHistory().judge(CFG).stable


def test_the_verdict_given_at_a_point_stands_there():
    """A checkpoint written right after a verdict carries that verdict, although the window
    closed since (its ticks are gone from the history)."""
    history = StabilityHistory()
    for i in range(4):
        history.remember_tick({**_tick(i), "loss/D_fake": 0.0})
    unstable = history.judge(CFG)
    history.give(4000, unstable, CFG)
    assert history.judge(CFG).stable  # 3 bad ticks are left, one short of patience
    assert history.verdict_at(4000, CFG) == unstable
    assert history.verdict_at(5000, CFG).stable
    assert StabilityHistory.from_json(history.to_json()) == history


def test_rollback_settings_and_their_validation():
    cfg = load_config("tiny-cpu")
    new, changes = adjusted_config(cfg)
    assert new.train.r1_gamma == pytest.approx(2 * cfg.train.r1_gamma)
    assert new.train.g_lr == pytest.approx(cfg.train.g_lr / 2)
    assert new.train.d_lr == pytest.approx(cfg.train.d_lr / 2)
    assert changes["train.r1_gamma"] == [cfg.train.r1_gamma, new.train.r1_gamma]
    same, none = adjusted_config(
        load_config("tiny-cpu", ["stability.gamma_factor=1", "stability.lr_factor=1"])
    )
    assert none == {}
    assert same == cfg.replace({"stability": {"gamma_factor": 1.0, "lr_factor": 1.0}})
    with pytest.raises(ConfigError, match=r"stability\.rt_above = 1\.5 is not allowed"):
        load_config("tiny-cpu", ["stability.rt_above=1.5"])
    with pytest.raises(ConfigError, match=r"train\.freeze_d = 4 is not allowed: at most 3"):
        load_config("tiny-cpu", ["train.freeze_d=4"])
