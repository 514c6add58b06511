"""Real data for the web server: a manager root whose job holds a tiny trained run, and a
prepared folder, served through FastAPI's TestClient."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers.training import EVERY_PHASE, quiet
from heroforge.config import load_config
from heroforge.manager import open_queue, submit
from heroforge.manager.progress import read_progress
from heroforge.manager.spec import spec_from_options
from heroforge.rundir import find_run_dir
from heroforge.serve.app import create_app

# 2 ticks, 2 checkpoints; every phase, so that the page has path-length and ADA curves
TICKS = [*EVERY_PHASE, "train.tick_kimg=0.032", "train.checkpoint_kimg=0.032"]
TOKEN = "test-token-0123456789abcdef"
LOCAL = "http://127.0.0.1:8765"  # without a token the server answers only to loopback names


@pytest.fixture(scope="session")
def trained_run(tiny_archive, tmp_path_factory) -> Path:
    """A run folder trained in-process for 0.064 kimg (a few seconds): stats, checkpoints,
    a sample grid."""
    from heroforge.train.run import start

    outdir = tmp_path_factory.mktemp("serve-run")
    cfg = load_config("tiny-cpu", TICKS)
    run_dir, outcome = start(tiny_archive, cfg, outdir, total_kimg=0.064, log=quiet)
    assert outcome == "done"
    return run_dir


@pytest.fixture
def root(tmp_path, tiny_archive, trained_run) -> Path:
    """Job 1 running (claimed, with the supervisor's progress reading) with the trained run
    as its run folder; job 2 queued, not started."""
    queue = open_queue(tmp_path / "root")
    spec = spec_from_options(tiny_archive, "tiny-cpu", 0.064, TICKS)
    first = submit(queue, spec)
    submit(queue, spec, allow_duplicate=True)
    run = first.dir / "runs" / trained_run.name
    shutil.copytree(trained_run, run)
    # a run from before grids were named to the image: whole kimg
    shutil.copy(
        run / "samples" / "grid-000000.032kimg.png", run / "samples" / "grid-000000kimg.png"
    )
    queue.claim("test-supervisor", 600, 1)
    progress = read_progress(find_run_dir(first.dir / "runs"))
    status = {
        **progress.as_dict(),
        "eta_s": 12.5,
        "wall_s": 30.0,
        "lost_s": 4.0,
        "run_dir": str(run),
        "updated": time.time(),
    }
    queue.heartbeat(first.id, "test-supervisor", 600, kimg=progress.kimg, status=json.dumps(status))
    return tmp_path / "root"


@pytest.fixture
def prepared(tmp_path, tiny_archive) -> Path:
    """A copy of the tiny set's prepare output (manifest, overrides, caches), to write into."""
    copy = tmp_path / "prepared"
    shutil.copytree(tiny_archive.parent / "prepared", copy)
    return copy


@pytest.fixture
def client(root, prepared):
    with TestClient(create_app(root, None, [prepared]), base_url=LOCAL) as c:
        yield c


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def token_client(root, prepared):
    """With a token the server may listen anywhere: requests come from a non-local name."""
    with TestClient(create_app(root, TOKEN, [prepared]), base_url="http://203.0.113.7:8765") as c:
        yield c
