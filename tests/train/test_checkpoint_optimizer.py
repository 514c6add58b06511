"""A resume keeps the live optimiser's implementation (issue 27.1): a checkpoint written by a
CPU run's Adam steps under a GPU's fused Adam and loss scaler, and the other way round (fused
Adam and the scaler running on the CPU stand in for the GPU)."""

import pytest
import torch

from helpers.networks import make_generator
from heroforge.nets.loading import load_latest
from heroforge.train import checkpoint as ckpt


def _scaled_step(net: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
    scaler = torch.amp.GradScaler("cpu")  # as a GPU run in fp16 uses one
    opt.zero_grad()
    loss = sum(p.square().sum() for p in net.parameters())
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


@pytest.mark.parametrize(("saved_fused", "live_fused"), [(None, True), (True, None)])
def test_resume_keeps_the_live_optimisers_implementation(tmp_path, saved_fused, live_fused):
    gen, cfg = make_generator()
    saving = torch.optim.Adam(gen.parameters(), fused=saved_fused)
    _scaled_step(gen, saving)
    tensors, plain = ckpt.flatten_optimizer("opt_G", saving)
    ckpt.save_checkpoint(tmp_path, 8, {"G": gen}, cfg, 0, tensors, {"opt_G": plain}, keep=3)

    checkpoint, problems = load_latest(tmp_path)
    assert problems == []
    resumed = checkpoint.loaded.generator("G")
    live = torch.optim.Adam(resumed.parameters(), fused=live_fused)
    ckpt.restore_optimizer("opt_G", live, checkpoint.loaded.extra, checkpoint.meta["opt_G"])
    assert live.param_groups[0]["fused"] is live_fused
    assert live.param_groups[0]["foreach"] is None
    first = next(iter(resumed.parameters()))
    saved_first = saving.state[next(iter(gen.parameters()))]
    assert torch.equal(live.state[first]["exp_avg"], saved_first["exp_avg"])

    _scaled_step(resumed, live)  # a CPU Adam's state under fused Adam + scaler: no assertion
    assert live.state[first]["step"].item() == 2


def test_a_checkpoint_of_another_group_layout_is_refused(tmp_path):
    gen, _ = make_generator()
    opt = torch.optim.Adam(gen.parameters())
    tensors, plain = ckpt.flatten_optimizer("opt_G", opt)
    params = list(gen.parameters())
    two_groups = torch.optim.Adam([{"params": params[:2]}, {"params": params[2:]}])
    with pytest.raises(ValueError, match="1 saved parameter groups for 2"):
        ckpt.restore_optimizer("opt_G", two_groups, tensors, plain)
