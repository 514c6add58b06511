"""The SkyPilot spot recipe (deploy/skypilot): SkyPilot accepts it, and its run script starts a
run in a bucket folder, stops it with a checkpoint at the cloud's notice and resumes it.

SkyPilot is not in the dev environment (it is the optional extra "skypilot"): it would pin
uvicorn below 0.36 and click below 8.2 and add some sixty packages. Its own validation runs
where a Python with SkyPilot is at hand (this one, or HEROFORGE_SKYPILOT_PYTHON); the dev
environment has no YAML library either, so the recipe's structure is also read here with a
reader for the small part of YAML the recipe uses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.training import tick_kimgs
from heroforge.errors import EXIT_RESUMABLE
from heroforge.nets.loading import load_latest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "deploy" / "skypilot" / "heroforge-spot.yaml"
SCRIPT = ROOT / "deploy" / "skypilot" / "spot-train.sh"
BUCKETS = [("RUN_BUCKET", "gs://heroes/runs"), ("DATA_BUCKET", "gs://heroes/data")]


def read_simple_yaml(text: str) -> dict:
    """Mappings by indentation, plain or quoted scalars, `[a, b]` lists, `|` blocks, comments:
    the YAML the recipe is written in (anything else raises, so the recipe stays readable here).
    Scalars stay strings."""
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        match = re.fullmatch(r"([\w/.-]+):(?: +(.*?))?(?: +#.*)?", line.strip())
        assert match, f"not in the recipe's YAML subset: {line!r}"
        key, value = match.group(1), match.group(2)
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value is None:
            parent[key] = {}
            stack.append((indent, parent[key]))
        elif value == "|":
            block = []
            while i < len(lines) and (
                not lines[i].strip() or lines[i].startswith(" " * (indent + 1))
            ):
                block.append(lines[i])
                i += 1
            width = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            parent[key] = "\n".join(b[width:] for b in block).strip("\n") + "\n"
        elif value.startswith("["):
            parent[key] = [v.strip() for v in value.strip("[]").split(",")]
        else:
            parent[key] = value.strip('"')
    return root


def test_recipe_is_a_spot_job_that_resumes_through_the_run_script():
    recipe = read_simple_yaml(RECIPE.read_text())
    resources = recipe["resources"]
    assert resources["use_spot"] == "true"
    recovery = resources["job_recovery"]
    assert recovery["recover_on_exit_codes"] == [str(EXIT_RESUMABLE)]
    assert int(recovery["max_restarts_on_errors"]) >= 1
    runs = recipe["file_mounts"]["/heroforge-runs"]
    assert runs["mode"] == "MOUNT_CACHED"  # MOUNT cannot append to stats.jsonl
    assert runs["source"] == "$RUN_BUCKET"
    assert recipe["envs"]["RUN_BUCKET"] == "null"  # SkyPilot refuses a launch without one
    assert "export HEROFORGE_OUT=/heroforge-runs/$NAME" in recipe["run"]
    assert f"exec bash {SCRIPT.relative_to(ROOT)}" in recipe["run"]


def test_run_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def _python_with_skypilot() -> str | None:
    given = os.environ.get("HEROFORGE_SKYPILOT_PYTHON")
    if given:
        return given
    return sys.executable if importlib.util.find_spec("sky") else None


CHECK_WITH_SKYPILOT = """
import json, sys
import yaml
import sky

def load(overrides):
    with open(sys.argv[1]) as f:
        return sky.Task.from_yaml_config(yaml.safe_load(f), env_overrides=overrides)

task = load(json.loads(sys.argv[2]))
(resources,) = task.resources
mounts = {path: [s.source, s.mode.value] for path, s in task.storage_mounts.items()}
try:
    load([])
    missing = None
except ValueError as err:
    missing = str(err)
print(json.dumps({"spot": resources.use_spot, "recovery": resources.job_recovery,
                  "gpus": resources.accelerators, "mounts": mounts, "run": task.run,
                  "missing_bucket": missing}))
"""


@pytest.mark.slow
def test_skypilot_accepts_the_recipe():
    python = _python_with_skypilot()
    if python is None:
        pytest.skip(
            "SkyPilot is not installed here (it stays out of the dev environment): "
            "pip install 'heroforge[skypilot]', or point HEROFORGE_SKYPILOT_PYTHON at "
            "the python of an environment that has it"
        )
    done = subprocess.run(
        [python, "-c", CHECK_WITH_SKYPILOT, str(RECIPE), json.dumps(BUCKETS)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["spot"] is True
    assert task["recovery"]["recover_on_exit_codes"] == [EXIT_RESUMABLE]
    assert task["recovery"]["max_restarts_on_errors"] >= 1
    assert task["mounts"]["/heroforge-runs"] == ["gs://heroes/runs", "MOUNT_CACHED"]
    assert task["mounts"]["/heroforge-data"] == ["gs://heroes/data", "COPY"]
    assert "spot-train.sh" in task["run"]
    assert "RUN_BUCKET" in task["missing_bucket"]


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _start(env: dict[str, str]) -> subprocess.Popen:
    """The run script in its own process group, so that a failed test can end all of it."""
    return subprocess.Popen(
        ["bash", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _fake_metadata_server(folder: Path) -> Path:
    """A `curl` that answers like GCP's and AWS's metadata servers (AWS's IMDSv2: a token
    first): no preemption until the test writes the notice file, then a preemption."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    notice = folder / "notice"
    _executable(
        bin_dir / "curl",
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {folder / "calls"}\n'
        'case "$*" in\n'
        f"*instance/preempted*) [ -e {notice} ] && echo TRUE || echo FALSE ;;\n"
        "*'-X PUT'*latest/api/token*) echo token-1 ;;\n"
        f"*'X-aws-ec2-metadata-token: token-1'*spot/instance-action*) [ -e {notice} ] ;;\n"
        "*) exit 22 ;;\n"  # curl -f's answer to an HTTP error
        "esac\n",
    )
    return bin_dir


@pytest.mark.parametrize("cloud", ["GCP", "AWS"])
def test_the_notice_reaches_the_trainer_as_sigterm(cloud, tmp_path, request):
    bin_dir = _fake_metadata_server(tmp_path)
    # Stands in for the trainer, whose own SIGTERM handling the slow test below and the
    # training tests check: it records its arguments and stops with 75 on SIGTERM.
    _executable(
        bin_dir / "heroforge",
        "#!/usr/bin/env bash\n"
        "trap 'exit 75' TERM\n"
        f'echo "$@" > {tmp_path / "args"}\n'
        "while :; do sleep 0.1; done\n",
    )
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(bin_dir), os.environ["PATH"]]),
        "HEROFORGE_OUT": str(tmp_path / "bucket" / "heroes"),
        "HEROFORGE_DATA": "heroes.zip",
        "PRESET": "superheroes-512",
        "KIMG": "25000",
        "CHECKPOINT_MINUTES": "10",
        "SETTINGS": "train.batch=32 metrics.kid=true",
        "SKYPILOT_NUM_GPUS_PER_NODE": "8",
        "SKYPILOT_CLUSTER_INFO": json.dumps({"cluster_name": "test", "cloud": cloud}),
    }
    script = _start(env)
    request.addfinalizer(lambda: _stop_group(script))
    calls = tmp_path / "calls"
    deadline = time.time() + 60
    while not (calls.is_file() and "instance" in calls.read_text()):  # asked for a notice
        assert time.time() < deadline
        time.sleep(0.05)
    assert script.poll() is None, script.stdout.read()  # the watcher looked: no notice yet
    (tmp_path / "notice").touch()
    assert script.wait(timeout=60) == EXIT_RESUMABLE
    assert "preemption notice" in script.stdout.read()
    assert (tmp_path / "args").read_text().split() == [
        "train", "--data", "heroes.zip", "--preset", "superheroes-512",
        "--outdir", str(tmp_path / "bucket" / "heroes"), "--kimg", "25000", "--gpus", "8",
        "--set", "train.checkpoint_minutes=10", "--set", "train.batch=32",
        "--set", "metrics.kid=true",
    ]  # fmt: skip


@pytest.mark.slow
def test_run_script_stops_at_the_notice_and_every_restart_resumes(tiny_archive, tmp_path, request):
    bucket = tmp_path / "bucket"  # stands in for the bucket mount
    fake_bin = _fake_metadata_server(tmp_path)
    env = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(fake_bin), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "HEROFORGE_OUT": str(bucket / "heroes"),
        "HEROFORGE_DATA": str(tiny_archive),
        "PRESET": "tiny-cpu",
        "KIMG": "0.256",
        "CHECKPOINT_MINUTES": "10",
        "SETTINGS": "train.tick_kimg=0.032 train.checkpoint_kimg=0.128",
        "SKYPILOT_NUM_GPUS_PER_NODE": "1",
        "SKYPILOT_CLUSTER_INFO": json.dumps({"cluster_name": "test", "cloud": "GCP"}),
    }

    def start() -> subprocess.Popen:
        process = _start(env)
        request.addfinalizer(lambda: _stop_group(process))
        return process

    first = start()
    deadline = time.time() + 300
    while not any(p.stat().st_size for p in bucket.glob("heroes/*/stats.jsonl")):
        assert time.time() < deadline
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.05)
    (tmp_path / "notice").touch()  # the cloud announces the preemption
    assert first.wait(timeout=300) == EXIT_RESUMABLE, first.stdout.read()
    output = first.stdout.read()
    assert "preemption notice" in output
    (run,) = list((bucket / "heroes").iterdir())
    stopped_at = load_latest(run / "checkpoints")[0].meta["progress"]["nimg"]
    assert 0 < stopped_at < 256  # stopped before the target
    assert "received SIGTERM" in (run / "stats.jsonl").read_text()

    (tmp_path / "notice").unlink()  # the recovery runs on a new machine
    second = start()
    assert second.wait(timeout=600) == 0, second.stdout.read()
    assert f"resumed {run}" in second.stdout.read()
    assert tick_kimgs(run) == pytest.approx([0.032 * n for n in range(1, 9)])

    third = start()  # a recovery after the end trains nothing
    assert third.wait(timeout=300) == 0, third.stdout.read()
    assert "nothing to train" in third.stdout.read()
    assert list((bucket / "heroes").iterdir()) == [run]
