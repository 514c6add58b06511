"""Job specs: what `heroforge queue submit` accepts, checked completely before anything is queued.

A spec file is TOML with these keys (only `data` is required):

    data = "heroes.zip"            # training archive or folder (relative to the spec file)
    preset = "superheroes-512"     # preset name or config .toml path
    kimg = 25000                   # target; default = train.cycles x train.cycle_kimg
    set = ["train.gpus=8", "job.priority=5"]   # SECTION.KEY=VALUE overrides, in order

The resolved configuration is frozen into the job folder (config.toml) at submit time, so a
later change of the preset files does not change a queued job.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from heroforge.checks import target_kimg
from heroforge.config import Config, load_config
from heroforge.errors import UserError

SPEC_KEYS = {"data", "preset", "kimg", "set"}


@dataclass(frozen=True)
class JobSpec:
    data: Path  # absolute
    cfg: Config
    target_kimg: float

    @property
    def name(self) -> str:
        return self.cfg.job.name or f"{self.data.stem}-{self.cfg.data.resolution}"

    @property
    def config_sha(self) -> str:
        return hashlib.sha256(self.cfg.to_toml().encode()).hexdigest()


def spec_from_options(
    data: str | Path, preset: str, kimg: float | None, overrides: list[str]
) -> JobSpec:
    """Resolve and check a job given on the command line (relative paths: the current dir)."""
    cfg = load_config(preset, overrides)
    target = cfg.train.total_kimg if kimg is None else target_kimg(float(kimg))
    path = Path(data).expanduser().resolve()
    if not path.exists():
        raise UserError(f"the training data {data} does not exist")
    return JobSpec(path, cfg, target)


def read_spec(path: Path) -> JobSpec:
    """A spec file, with `data` and `preset` paths read relative to the file."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"the job spec {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the job spec {path}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"the job spec {path} is not valid TOML: {err}") from None
    unknown = sorted(set(values) - SPEC_KEYS)
    if unknown:
        raise UserError(
            f"unknown key {unknown[0]!r} in the job spec {path}; allowed: "
            + ", ".join(sorted(SPEC_KEYS))
        )
    if not isinstance(values.get("data"), str):
        raise UserError(f'the job spec {path} needs data = "ARCHIVE_OR_FOLDER"')
    preset = values.get("preset", "superheroes-512")
    overrides = values.get("set", [])
    kimg = values.get("kimg")
    if not isinstance(preset, str):
        raise UserError(f"preset in {path} must be a name or a path, not {preset!r}")
    if not isinstance(overrides, list) or not all(isinstance(s, str) for s in overrides):
        raise UserError(f'set in {path} must be a list of "SECTION.KEY=VALUE" strings')
    if kimg is not None and (isinstance(kimg, bool) or not isinstance(kimg, int | float)):
        raise UserError(f"kimg in {path} must be a number, not {kimg!r}")
    if kimg is not None:
        target_kimg(kimg, f"kimg in {path}")
    base = path.parent
    preset_path = base / preset
    if preset.endswith(".toml") and preset_path.exists():
        preset = str(preset_path)
    return spec_from_options(base / Path(values["data"]).expanduser(), preset, kimg, overrides)


def fingerprint_data(data: Path, cfg: Config) -> tuple[str, int]:
    """Open the data the way training will (same resolution check) and fingerprint it."""
    from heroforge.data.dataset import ImageDataset

    dataset = ImageDataset(
        data,
        resolution=cfg.data.resolution,
        mirror=cfg.data.mirror,
        use_labels=cfg.data.use_labels,
        max_images=cfg.data.max_images,
    )
    return dataset.fingerprint(), len(dataset)
