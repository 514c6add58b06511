"""The two descriptive files of a run folder: config.toml (the resolved config a resume uses)
and run.json (data path, dataset fingerprint, target kimg, and what happened: init_from,
rollbacks). Both are rewritten atomically, so a crash leaves the old or the new version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from heroforge.config import Config
from heroforge.fileio import atomic_write_text

RUN_JSON = "run.json"
CONFIG_TOML = "config.toml"


def write_config(run_dir: Path, cfg: Config) -> None:
    atomic_write_text(run_dir / CONFIG_TOML, cfg.to_toml())


def read_run_json(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8"))


def write_run_json(run_dir: Path, run: dict[str, Any]) -> None:
    atomic_write_text(run_dir / RUN_JSON, json.dumps(run, indent=1))


def append_run_event(run_dir: Path, key: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Append event to the list run.json keeps under key; returns the new list."""
    run = read_run_json(run_dir)
    events = [*run.get(key, []), event]
    write_run_json(run_dir, {**run, key: events})
    return events
