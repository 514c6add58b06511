"""Every setting of heroforge as frozen dataclasses, loaded from TOML presets.

The defaults are the reference run of MISSION.md: the official StyleGAN2-ADA "auto" config at
512 px on 8 GPUs. A preset or user file only needs the keys it changes; unknown keys, wrong
types and impossible values raise ConfigError with one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import tomli_w

from heroforge.config_sections import (
    AugmentConfig,
    DataConfig,
    JobConfig,
    MetricsConfig,
    NetworkConfig,
    PrepareConfig,
    StabilityConfig,
    TrainConfig,
    _as_toml,
    _fail,
    _to_toml_value,
)
from heroforge.errors import ConfigError


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    job: JobConfig = field(default_factory=JobConfig)

    def __post_init__(self) -> None:
        # Minibatch stddev groups images inside one GPU's batch, so that batch must split evenly.
        per_step = self.train.images_per_step
        group = min(self.network.mbstd_group, per_step)
        if per_step % group:
            _fail(
                "network.mbstd_group",
                self.network.mbstd_group,
                f"a divisor of the images per GPU step ({per_step})",
            )

        # Freeze-D counts the discriminator's blocks b{resolution} ... b8.
        blocks = self.data.resolution.bit_length() - 3
        if self.train.freeze_d > blocks:
            _fail(
                "train.freeze_d",
                self.train.freeze_d,
                f"at most {blocks}, the discriminator blocks at {self.data.resolution} px",
            )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {
            f.name: {
                k: _to_toml_value(v) for k, v in dataclasses.asdict(getattr(self, f.name)).items()
            }
            for f in dataclasses.fields(self)
        }

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def replace(self, overrides: dict[str, dict[str, Any]]) -> Config:
        """A copy with some keys changed: {"train": {"batch": 32}}; validated like a file."""
        return config_from_dict(_merge(self.to_dict(), overrides))

    def on_gpus(self, gpus: int) -> Config:
        """The same run on `gpus` GPUs (processes): the same global batch in the same chunks,
        more or fewer of them per GPU. A chunk fixes which images it holds, its random draws
        and its minibatch-std groups, so the run computes what it would have on its old count;
        batch_gpu is written out, since batch / gpus would now give another chunk size."""
        tc = self.train
        if gpus not in tc.gpu_counts():
            counts = ", ".join(map(str, tc.gpu_counts()))
            raise ConfigError(
                f"this run splits each minibatch of {tc.batch} images in {tc.chunks} chunks of "
                f"{tc.images_per_step}: it can go on with {counts} GPUs (processes), not {gpus}"
            )
        return self.replace({"train": {"gpus": gpus, "batch_gpu": tc.images_per_step}})


def _merge(base: dict[str, dict[str, Any]], update: dict[str, Any]) -> dict[str, Any]:
    merged = {section: dict(values) for section, values in base.items()}
    for section, values in update.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section].update(values)
        else:
            merged[section] = values
    return merged


def _suggest(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _coerce(key: str, value: object, hint: object) -> object:
    """Check a TOML value against a field's type; int is accepted where a float is expected."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # e.g. int | Literal["auto"]: the first option that fits
        options = typing.get_args(hint)
        for option in options:
            try:
                return _coerce(key, value, option)
            except ConfigError:
                pass
        words = [_TYPE_WORDS.get(o) or " or ".join(map(repr, typing.get_args(o))) for o in options]
        raise ConfigError(
            f"{key} = {_as_toml(value)} has the wrong type: expected " + " or ".join(words)
        )
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            _fail(key, value, "one of " + ", ".join(repr(c) for c in choices))
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(
                f"{key} = {_as_toml(value)} has the wrong type: expected {len(args)} numbers"
            )
        return tuple(_coerce(key, v, a) for v, a in zip(value, args, strict=True))
    assert isinstance(hint, type)  # every other field is a plain bool, int, float or str
    ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(
            f"{key} = {_as_toml(value)} has the wrong type: expected {_TYPE_WORDS[hint]}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        _fail(key, value, "a finite number")
    return value


def _section_from_dict(cls: type, name: str, values: object) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table of keys, not {_as_toml(values)}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"unknown key {name}.{key}{_suggest(key, fields)}; keys of [{name}]: "
                + ", ".join(fields)
            )
        kwargs[key] = _coerce(f"{name}.{key}", value, hints[key])
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> Config:
    sections = typing.get_type_hints(Config)  # section name -> its dataclass
    kwargs = {}
    for name, section_values in values.items():
        if name not in sections:
            raise ConfigError(
                f"unknown section [{name}]{_suggest(name, list(sections))}; sections: "
                + ", ".join(sections)
            )
        kwargs[name] = _section_from_dict(sections[name], name, section_values)
    return Config(**kwargs)


def config_from_toml(text: str, source: str = "config") -> Config:
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML: {err}") from None
    return config_from_dict(values)


PRESETS = resources.files("heroforge") / "configs"


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml") for p in PRESETS.iterdir() if p.name.endswith(".toml")
    )


def read_preset_text(name_or_path: str) -> tuple[str, str]:
    """The TOML text of a preset name (configs/NAME.toml in the package) or of a file path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config file {path}: {err}") from None
    if name_or_path not in preset_names():
        raise ConfigError(
            f"unknown preset {name_or_path!r}{_suggest(name_or_path, preset_names())}; presets: "
            + ", ".join(preset_names())
            + " (or a path to a .toml file)"
        )
    return (PRESETS / f"{name_or_path}.toml").read_text(encoding="utf-8"), name_or_path


def parse_override(assignment: str) -> dict[str, dict[str, Any]]:
    """'train.batch=32' -> {"train": {"batch": 32}}. The value is read as TOML; a bare word is
    taken as a string so that `--set augment.pipe=bgc` needs no quotes."""
    key, sep, raw = assignment.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not section or not name:
        raise ConfigError(f"--set {assignment!r} is not allowed: use SECTION.KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return {section: {name: value}}


def load_config(preset: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A preset (name or TOML path) with `SECTION.KEY=VALUE` overrides applied in order."""
    text, source = read_preset_text(preset)
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML: {err}") from None
    for assignment in overrides:
        values = _merge(values, parse_override(assignment))
    return config_from_dict(values)
