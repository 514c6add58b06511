"""The ADA controller: raise the augmentation probability p while D overfits the reals.

The overfitting heuristic of the paper is r_t = E[sign(D(real))]: 0 when D cannot tell
(augmented) reals from fakes, 1 when it is certain of every real. Every `interval` minibatches p
moves one fixed step towards keeping r_t at `target`; the step is sized so that p can travel
from 0 to 1 in `speed_kimg` thousand real images.

Multi-GPU (torch.distributed): every process calls `accumulate` with its own logits and `step`
once per minibatch; `step` hands this minibatch's local [sum of signs, count] to the `reduce`
hook (the trainer passes runtime.dist.distributed_sum, an all-reduce of two numbers), so every
process holds the same global sums and takes the same decision, and any rank's `state_dict()`
resumes all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

import torch

if TYPE_CHECKING:
    from heroforge.config import AugmentConfig

Reduce = Callable[[torch.Tensor], torch.Tensor]
MODES = ("ada", "fixed", "none")


class AdaState(TypedDict):
    """AdaController.state_dict(): plain numbers, so that it can be saved as JSON."""

    p: float
    signs_sum: float  # sum of sign(D(real)) since the last adjustment, over all processes
    signs_count: float  # how many logits that sum covers
    minibatches: int
    rt: float | None  # the last measured r_t; None before the first adjustment


class AdaController:
    """Steers p; per minibatch call `accumulate(real_logits)`, then `p = step(batch_size)`.

    Mode "ada" adapts p (clamped to [0, 1]), "fixed" keeps the given p and "none" keeps p = 0;
    the latter two still measure r_t for the logs. `state_dict()` is a plain dict (call it
    after `step`, not between `accumulate` and `step`).
    """

    def __init__(
        self,
        mode: str = "ada",  # "ada", "fixed" or "none"
        target: float = 0.6,  # the r_t that ADA aims for
        speed_kimg: float = 500.0,  # thousand images for p to go from 0 to 1
        interval: int = 4,  # adjust p every N minibatches
        p: float = 0.0,  # initial p ("ada") or the constant p ("fixed"); ignored for "none"
        reduce: Reduce | None = None,  # sums [sum, count] over processes, e.g. distributed_sum
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown augment mode {mode!r}; modes: {', '.join(MODES)}")
        if not 0 < target < 1 or speed_kimg <= 0 or interval < 1 or not 0 <= p <= 1:
            raise ValueError(
                f"need 0 < target < 1, speed_kimg > 0, interval >= 1, 0 <= p <= 1; got "
                f"target={target}, speed_kimg={speed_kimg}, interval={interval}, p={p}"
            )
        self.mode = mode
        self.target = target
        self.speed_kimg = speed_kimg
        self.interval = interval
        self.reduce = reduce
        self.p = 0.0 if mode == "none" else float(p)
        self.rt: float | None = None  # r_t of the last completed interval
        self.minibatches = 0  # minibatches stepped in the current interval
        # [sum of signs, count]: this minibatch's local logits, and the interval's global sums.
        # float64 counts exactly far beyond any interval; kept on the logits' device.
        self._pending = torch.zeros(2, dtype=torch.float64)
        self._totals = torch.zeros(2, dtype=torch.float64)

    @classmethod
    def from_config(cls, config: AugmentConfig, reduce: Reduce | None = None) -> AdaController:
        """The controller of the [augment] section."""
        c = config
        return cls(c.mode, c.target, c.speed_kimg, c.interval, c.p, reduce)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Record D's logits for (augmented) real images; no host sync, no gradient."""
        logits = real_logits.detach()
        if self._pending.device != logits.device:
            self._pending = self._pending.to(logits.device)
            self._totals = self._totals.to(logits.device)
        signs = torch.sign(logits).sum(dtype=torch.float64)
        # new_full fills on the device; new_tensor would copy from the host and wait
        self._pending += torch.stack([signs, signs.new_full((), float(logits.numel()))])

    def step(self, batch_size: int) -> float:
        """End a minibatch of `batch_size` images (all processes together); returns p.

        Every `interval`-th call computes r_t and moves p by
        sign(r_t - target) * batch_size * interval / (speed_kimg * 1000). An interval in which
        nothing was accumulated leaves p alone: there is no evidence to act on."""
        pending = self._pending.clone()
        self._totals += pending if self.reduce is None else self.reduce(pending)
        self._pending.zero_()
        self.minibatches += 1
        if self.minibatches < self.interval:
            return self.p
        self.minibatches = 0
        total, count = self._totals.tolist()
        self._totals.zero_()
        if count == 0:
            return self.p
        self.rt = total / count
        if self.mode == "ada":
            direction = (self.rt > self.target) - (self.rt < self.target)
            adjust = direction * batch_size * self.interval / (self.speed_kimg * 1000)
            self.p = min(max(self.p + adjust, 0.0), 1.0)
        return self.p

    def state_dict(self) -> AdaState:
        if self._pending[1].item() != 0:
            raise RuntimeError("AdaController.state_dict() between accumulate() and step()")
        total, count = self._totals.tolist()
        return {
            "p": self.p,
            "signs_sum": total,
            "signs_count": count,
            "minibatches": self.minibatches,
            "rt": self.rt,
        }

    def load_state_dict(self, state: AdaState) -> None:
        """Resume exactly; in "fixed" and "none" mode p stays what the configuration says."""
        missing = {"p", "signs_sum", "signs_count", "minibatches", "rt"} - set(state)
        if missing:
            raise ValueError(f"AdaController state lacks {', '.join(sorted(missing))}")
        p = float(state["p"])
        if not 0 <= p <= 1:
            raise ValueError(f"AdaController state has p = {p}, outside [0, 1]")
        if self.mode == "ada":
            self.p = p
        self.rt = None if state["rt"] is None else float(state["rt"])
        self.minibatches = int(state["minibatches"])
        self._totals = self._totals.new_tensor([state["signs_sum"], state["signs_count"]])
        self._pending.zero_()
