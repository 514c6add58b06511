"""The StyleGAN2-ADA training loop, resumable at every checkpoint to the bit.

One step = one global minibatch: phases G (main), G path length (lazy), D (main), D R1 (lazy),
each accumulated over this process's chunks of the minibatch, gradients summed over processes,
one optimiser step; then the G EMA update and the ADA controller. Ticks print and log
statistics; checkpoints hold the full state (see checkpoint.py); a SIGTERM/SIGINT/SIGUSR1 ends the
current step, writes a checkpoint and returns "interrupted". At every cycle end and metrics
measurement the run gets a stability verdict (judging.py, stability.py): `best` is the best FID
among stable snapshots, and with stability.rollback an unstable run goes back to it
(rollback.py). The counters and that state are typed in state.py.

Every write of the run (checkpoints, stats, TensorBoard, sample grids, rollback records) goes
through one SaveGuard (fileio.py): the first that fails makes every process stop after the
step under way, no further checkpoint is attempted, and each raises the same one-line
SaveError (exit 73) naming the file and the checkpoint a resume goes on from, which is never
touched. Training on would only produce work with nowhere to keep it.
"""

from __future__ import annotations

import copy
import functools
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heroforge import rundir
from heroforge.augment import AdaController, AugmentPipe
from heroforge.config import Config, TrainConfig
from heroforge.console import Log
from heroforge.data.dataset import ImageDataset
from heroforge.data.loader import worker_count
from heroforge.errors import SaveError
from heroforge.fileio import SaveGuard
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.generator import build_generator
from heroforge.nets.layers import set_half_dtype
from heroforge.nets.loading import Checkpoint
from heroforge.nets.weights import load_networks
from heroforge.runtime.allocator import release_freed_memory
from heroforge.runtime.dist import (
    DistInfo,
    StopAgreement,
    all_reduce_grads,
    barrier,
    broadcast_module,
    distributed_sum,
    from_rank0,
)
from heroforge.runtime.signals import STOP_SIGNALS, received
from heroforge.train import checkpoint as ckpt
from heroforge.train import judging, rollback
from heroforge.train.loss import StyleGAN2Loss
from heroforge.train.precision import make_scalers, precision_in_use, resolve_precision
from heroforge.train.sampler import RealChunks
from heroforge.train.seeding import seed_chunk, seed_everything, set_deterministic
from heroforge.train.stability import Verdict
from heroforge.train.state import Progress
from heroforge.train.stats import (
    StatsLog,
    TickStats,
    grid_name,
    sample_grid,
    tick_line,
    tick_record,
    write_grid,
)
from heroforge.train.trackers import Tracker, open_tracker
from heroforge.train.transfer import frozen_parameters

PHASES = ("G", "G_pl", "D", "D_r1")


def phases_at(tc: TrainConfig, step: int) -> tuple[str, ...]:
    """The phases that run at this global step: the main ones always, a lazy regulariser at
    every multiple of its interval (and never with a zero weight)."""
    intervals = {"G": 1, "G_pl": tc.pl_interval, "D": 1, "D_r1": tc.r1_interval}
    weights = {"G_pl": tc.pl_weight, "D_r1": tc.r1_gamma}
    return tuple(p for p in PHASES if step % intervals[p] == 0 and weights.get(p, 1) != 0)


def _scaled_backward(scaler: torch.amp.GradScaler, parts: int, loss: torch.Tensor) -> None:
    """Backpropagate one of the `parts` equal shares of a minibatch's loss (loss scaled)."""
    scaler.scale(loss / parts).backward()


class Trainer:
    def __init__(
        self,
        cfg: Config,  # the run's configuration
        dataset: ImageDataset,  # training images (already checked against cfg.data)
        run_dir: Path,  # where checkpoints, samples and stats go
        dist: DistInfo,  # this process's rank, the world size and its device
    ) -> None:
        self.cfg, self.dataset, self.run_dir, self.dist = cfg, dataset, Path(run_dir), dist
        tc = cfg.train
        set_deterministic(tc.deterministic, cuda=dist.device.type == "cuda")
        seed_everything(tc.seed)
        device = dist.device
        c_dim = dataset.c_dim
        self.c_dim = c_dim
        self.G = build_generator(cfg, c_dim).to(device).train().requires_grad_(False)
        self.D = build_discriminator(cfg, c_dim).to(device).train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.precision = resolve_precision(tc.precision, device)
        for net in (self.G, self.D):
            set_half_dtype(net, self.precision.half)
        # G_ema keeps the networks' own precision (fp16 top blocks on CUDA, as the official
        # metrics render it; fp32 on the CPU), whatever G and D train in: the metrics, the
        # choice of `best` and the sample grids then see the pictures `generate` draws
        self.precision_in_use = precision_in_use(self.precision, cfg.network.num_fp16_res)
        self.scalers = make_scalers(self.precision, device)
        self.augment = AugmentPipe.from_config(cfg.augment).to(device)
        self.ada = AdaController.from_config(cfg.augment, reduce=distributed_sum)
        self.loss = StyleGAN2Loss(self.G, self.D, self.augment, tc, compile=tc.compile).to(device)
        # on GPUs one fused kernel updates every parameter instead of a few kernels each
        fused = True if device.type == "cuda" else None  # None: torch picks (foreach on CPU)
        self.opt_G = torch.optim.Adam(self.G.parameters(), eps=tc.eps, fused=fused)
        self.opt_D = torch.optim.Adam(self.D.parameters(), eps=tc.eps, fused=fused)
        self._set_hyperparameters()
        self.frozen_d = frozen_parameters(self.D, tc.freeze_d)  # Freeze-D: never updated
        for net in (self.G, self.D, self.G_ema):
            broadcast_module(net)
        self.reals = RealChunks(dataset, tc, dist, worker_count(cfg.data.workers, device))
        self.progress = Progress()
        self.writes = SaveGuard()  # rank 0's writes; the first failure stops the run
        self.stats = StatsLog(self.run_dir / rundir.STATS, self.writes) if dist.main else None
        self.board: Tracker | None = None  # train.tracker, opened by run() on rank 0
        self.signalled = False  # this process received SIGTERM/SIGINT (set by the handler)
        self.stop_requested = False  # all processes agreed to stop (checked after each step)
        self.grid_z = torch.from_numpy(np.random.RandomState(tc.seed).randn(32, cfg.network.z_dim))

    def _set_hyperparameters(self) -> None:
        """Adam's rate and betas from the config, adjusted for the regulariser's extra lazy
        steps. Called after every restore too: a rollback may have changed the rates."""
        tc = self.cfg.train
        for opt, lr, interval in (
            (self.opt_G, tc.g_lr, tc.pl_interval if tc.pl_weight else 0),
            (self.opt_D, tc.d_lr, tc.r1_interval if tc.r1_gamma else 0),
        ):
            ratio = interval / (interval + 1) if interval else 1.0
            b1, b2 = tc.betas
            for group in opt.param_groups:
                group.update(lr=lr * ratio, betas=(b1**ratio, b2**ratio), eps=tc.eps)

    def apply_config(self, cfg: Config) -> None:
        """Train on with changed [train] settings (a rollback's larger gamma, smaller rates)."""
        self.cfg = cfg
        self.loss.cfg = cfg.train
        self._set_hyperparameters()

    # -- state ------------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write a checkpoint (rank 0); its path, or None elsewhere or if it failed (kept by
        self.writes: nothing more is written once a write has failed)."""
        if not self.dist.main or self.writes.failure is not None:
            return None
        extra: dict[str, torch.Tensor] = {"loss.pl_mean": self.loss.pl_mean.detach().cpu()}
        meta: dict[str, Any] = {"kind": "checkpoint", "ada": self.ada.state_dict()}
        for name, opt in (("opt_G", self.opt_G), ("opt_D", self.opt_D)):
            tensors, plain = ckpt.flatten_optimizer(name, opt)
            extra.update(tensors)
            meta[name] = plain
        meta["scalers"] = {net: scaler.state_dict() for net, scaler in self.scalers.items()}
        meta["progress"] = self.progress.to_json()
        verdict = self.progress.stability.verdict_at(self.progress.nimg, self.cfg.stability)
        meta["stability"] = verdict.to_dict()
        best = self.progress.best
        meta["dataset"] = {"fingerprint": self.dataset.fingerprint(), "images": len(self.dataset)}
        folder = self.run_dir / rundir.CHECKPOINTS
        return self.writes.write(
            folder / rundir.checkpoint_name(self.progress.nimg),
            lambda: ckpt.save_checkpoint(
                folder,
                self.progress.nimg,
                self.networks(),
                self.cfg,
                self.c_dim,
                extra,
                meta,
                keep=self.cfg.train.keep_checkpoints,
                best_nimg=best.nimg if best else None,
            ),
        )

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def restore(self, checkpoint: Checkpoint, truncate_stats: bool = True) -> None:
        nets = checkpoint.loaded.networks
        for name in ("G", "D", "G_ema"):
            getattr(self, name).load_state_dict(nets[name].state_dict())
        extra, meta = checkpoint.loaded.extra, checkpoint.meta
        self.loss.pl_mean.copy_(extra["loss.pl_mean"])
        for name in ("opt_G", "opt_D"):
            ckpt.restore_optimizer(name, getattr(self, name), extra, meta[name])
        for net, state in meta.get("scalers", {}).items():
            if state:  # empty when the run had no loss scaling
                self.scalers[net].load_state_dict(state)
        self.ada.load_state_dict(meta["ada"])
        self.augment.set_p(self.ada.p)
        self.progress = Progress.from_json(meta["progress"])
        self._set_hyperparameters()
        if self.stats and truncate_stats:
            self.stats.truncate_after(self.progress.nimg)

    # -- one step -----------------------------------------------------------------------------
    def step(self, tick_stats: TickStats) -> None:
        tc = self.cfg.train
        total_chunks = tc.batch // tc.images_per_step
        active = phases_at(tc, self.progress.step)
        reals: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}  # decoded once per step
        for phase_idx, phase in enumerate(PHASES):
            if phase not in active:
                continue
            net, opt = (self.G, self.opt_G) if phase.startswith("G") else (self.D, self.opt_D)
            scaler = self.scalers[phase[0]]
            net.requires_grad_(True)
            if net is self.D:
                for param in self.frozen_d:
                    param.requires_grad_(False)  # no gradient, so Adam leaves it alone
            backward = functools.partial(_scaled_backward, scaler, total_chunks)
            for chunk in self.reals.chunks:
                seed_chunk(tc.seed, self.progress.step, phase_idx, chunk)
                if chunk not in reals:
                    reals[chunk] = self.reals.chunk(self.progress.nimg, chunk)
                real, c = reals[chunk]
                z = torch.randn([real.shape[0], self.cfg.network.z_dim], device=self.dist.device)
                if phase == "G":
                    stats = self.loss.g_main(z, c, backward)
                elif phase == "G_pl":
                    stats = self.loss.g_pl(z, c, backward)
                elif phase == "D":
                    stats = self.loss.d_main(real, z, c, backward)
                    self.ada.accumulate(stats.pop("real_signs"))
                else:
                    stats = self.loss.d_r1(real, c, backward)
                tick_stats.add(stats)
            net.requires_grad_(False)
            all_reduce_grads(list(net.parameters()), self.dist.world, not scaler.is_enabled())
            scaler.step(opt)  # skipped when the scaled gradients overflowed
            scaler.update()
            # Free the gradients now rather than at this net's next phase: the other net's
            # phases then run without them (G's or D's size in memory less at the peak).
            opt.zero_grad(set_to_none=True)
            if self.dist.device.type == "cpu":
                release_freed_memory()  # the next phase's peak starts from a lean heap (cpu.py)
        self.loss.update_means(distributed_sum)
        self._update_ema()
        self.augment.set_p(self.ada.step(tc.batch))
        self.progress.nimg += tc.batch
        self.progress.step += 1

    @torch.no_grad()
    def _update_ema(self) -> None:
        tc = self.cfg.train
        ema_nimg = tc.ema_kimg * 1000
        if tc.ema_rampup:
            ema_nimg = min(ema_nimg, self.progress.nimg * tc.ema_rampup)
        beta = 0.5 ** (tc.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # -- the run ------------------------------------------------------------------------------
    def request_stop(self, signum: int, _frame: object = None) -> None:
        # Only noted here: a signal can land at any moment, also between the processes'
        # agreement and the loop's check, so the loop acts on the agreed flag alone.
        self.signalled = True
        if self.stats:
            self.stats.note(f"received {signal.Signals(signum).name}: checkpoint after this step")

    def run(self, total_kimg: float, log: Log = print) -> str:
        """Train until total_kimg thousand images; returns "done" or "interrupted"."""
        tc = self.cfg.train
        target = round(total_kimg * 1000)
        previous = [signal.signal(s, self.request_stop) for s in STOP_SIGNALS]
        if (signum := received()) is not None:  # while the process was starting: one step
            self.request_stop(signum)  # (every process must agree to stop after the same one)
        tick_stats = TickStats()
        agree_to_stop = StopAgreement(self.dist)
        session_start = last_ckpt_time = time.monotonic()
        last_ckpt_nimg = self.progress.nimg
        start_elapsed = self.progress.elapsed_s
        tick_start_time = time.monotonic()
        if self.dist.main:
            self.board = open_tracker(self.cfg, self.run_dir, self.progress.nimg, log, self.writes)
        try:
            while self.progress.nimg < target and not self.stop_requested:
                self.step(tick_stats)
                unsaved = self.writes.failure is not None
                self.stop_requested = agree_to_stop(self.signalled or unsaved)
                self.progress.elapsed_s = start_elapsed + time.monotonic() - session_start
                done = self.progress.nimg >= target
                if (
                    done
                    or self.progress.nimg >= self.progress.tick_start_nimg + tc.tick_kimg * 1000
                ):
                    self._end_tick(tick_stats, tick_start_time, target, log)
                    tick_stats = TickStats()
                    tick_start_time = time.monotonic()
                judged = judging.due(self.progress, self.cfg, done)
                if judged and self._judge(log):  # went back: the clocks restart there
                    tick_stats = TickStats()
                    tick_start_time = last_ckpt_time = time.monotonic()
                    last_ckpt_nimg = self.progress.nimg
                    continue
                due_kimg = self.progress.nimg - last_ckpt_nimg >= tc.checkpoint_kimg * 1000
                due_time = time.monotonic() - last_ckpt_time >= tc.checkpoint_minutes * 60
                if done or due_kimg or due_time or judged or self.stop_requested:
                    self._checkpoint(log)
                    last_ckpt_time, last_ckpt_nimg = time.monotonic(), self.progress.nimg
        finally:
            self.reals.close()  # no decoding processes outlive the run
            for s, handler in zip(STOP_SIGNALS, previous, strict=True):
                signal.signal(s, handler)
            if self.board:
                self.board.close()
        self._raise_if_unsaved()
        return "done" if self.progress.nimg >= target else "interrupted"

    def _raise_if_unsaved(self) -> None:
        """Every process raises rank 0's first failed write, if there was one (all processes
        leave the loop after the same step, so they all arrive here together)."""
        message = None
        if self.writes.failure is not None:
            message = (
                f"{self.writes.failure}; training stopped and {rundir.resume_point(self.run_dir)}"
                f" with `heroforge train --resume {self.run_dir}` once it can write there"
            )
        message = from_rank0(message, self.dist.world)
        if message is not None:
            raise SaveError(message)

    # -- judgement points (judging.py, rollback.py) -------------------------------------------
    def _judge(self, log: Log) -> bool:
        """Measure the metrics (every process), give the stability verdict (rank 0) and, with
        stability.rollback, go back to the best stable snapshot if it says unstable. True if
        the run went back."""
        result = judging.measure(self.G_ema, self.dataset, self.cfg.metrics, self.dist)
        verdict = None
        if self.dist.main:
            verdict = judging.judge(self.progress, result, self.cfg.stability)
            judging.report(self.progress, verdict, result is not None, self.stats, self.board, log)
        return self.cfg.stability.rollback and self._roll_back_if(verdict, log)

    def _roll_back_if(self, verdict: Verdict | None, log: Log) -> bool:
        """Rank 0 decides (and first checks that the best snapshot loads); every rank then
        restores it. True if the run went back."""
        checkpoint = None
        if self.dist.main and self.writes.failure is None:  # else the run is stopping
            args = (self.run_dir, self.progress, self.cfg.stability, verdict, log)
            checkpoint = rollback.best_to_return_to(*args)
        path = from_rank0(None if checkpoint is None else str(checkpoint.path), self.dist.world)
        if path is None:
            return False
        if checkpoint is None:  # the other ranks load the file rank 0 checked
            checkpoint = Checkpoint(Path(path), load_networks(path, "cpu"))
        from_nimg = self.progress.nimg
        elapsed = self.progress.elapsed_s  # time spent stays spent, discarded or not
        new_cfg, changes = rollback.adjusted_config(self.cfg)
        barrier()  # every process has read the best checkpoint before rank 0 rewrites it
        self.restore(checkpoint, truncate_stats=False)
        self.apply_config(new_cfg)
        self.progress.elapsed_s = elapsed
        if self.board:
            self.board.reopen(self.progress.nimg)
        if self.stats is None:  # not the main process
            return True
        to_nimg, reasons = self.progress.nimg, verdict.reasons if verdict else ()
        record_args = (self.run_dir, new_cfg, changes, from_nimg, to_nimg, reasons)
        event = self.writes.write(
            self.run_dir / rundir.RUN_JSON, lambda: rollback.record(*record_args)
        )
        self.save()  # if it fails, the best file is intact and the newest: a resume goes on there
        if event is not None:
            rollback.discard_stats(self.stats, self.run_dir, to_nimg, event, log)
        return True

    # -- checkpoints and ticks ------------------------------------------------------------------
    def _checkpoint(self, log: Log) -> None:
        """Write a checkpoint and a sample grid (rank 0; a failure is kept by self.writes)."""
        path = self.save()
        if path is None:
            return
        grid = sample_grid(self.G_ema, self.grid_z, self.c_dim, self.dist.device)
        grid_path = self.run_dir / rundir.SAMPLES / grid_name(self.progress.nimg)
        self.writes.write(grid_path, lambda: write_grid(grid, grid_path))
        log(f"checkpoint {path.name}")
        if self.board:
            self.board.image("samples", grid, self.progress.nimg)
            self.board.flush()  # what a resume keeps is on disk with the checkpoint

    def _end_tick(self, tick_stats: TickStats, started: float, target: int, log: Log) -> None:
        p = self.progress
        seconds = max(time.monotonic() - started, 1e-9)
        record = tick_record(p, seconds, target, self.ada, self.precision_in_use)
        record.update(tick_stats.means())
        if self.dist.device.type == "cuda":
            record["gpu_mem_mb"] = round(torch.cuda.max_memory_allocated(self.dist.device) / 2**20)
        p.tick += 1
        p.tick_start_nimg = p.nimg
        p.stability.remember_tick(record)
        if self.stats:
            self.stats.write(record)
        if self.board:
            self.board.scalars(record, p.nimg)
        log(tick_line(record))
