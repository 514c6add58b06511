"""`heroforge serve --precision`: the explorer draws in the precision it was started with."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from helpers.cli import user_error
from helpers.training import quiet
from heroforge.commands import app
from heroforge.config import load_config
from heroforge.errors import UserError
from heroforge.serve.app import create_app
from heroforge.serve.models import ModelCache
from serve.conftest import LOCAL, TICKS


@pytest.fixture(scope="module")
def trained_run(tiny_archive, tmp_path_factory) -> Path:
    """The job's run, trained as conftest's but with its top two resolutions reduced-precision
    blocks (without them bf16 would change nothing)."""
    from heroforge.train.run import start

    outdir = tmp_path_factory.mktemp("serve-half-run")
    cfg = load_config("tiny-cpu", [*TICKS, "network.num_fp16_res=2"])
    run_dir, outcome = start(tiny_archive, cfg, outdir, total_kimg=0.064, log=quiet)
    assert outcome == "done"
    return run_dir


def _pictures(root: Path, precision: str) -> tuple[str, np.ndarray, str]:
    """(x-precision of a PNG, the seeds' pictures from JSON, its "precision")."""
    with TestClient(create_app(root, models=ModelCache(precision=precision)), base_url=LOCAL) as c:
        png = c.get("/api/jobs/1/generate?seeds=12")
        assert png.status_code == 200
        child = c.get("/api/jobs/1/child?a=12&b=40")
        assert child.headers["x-precision"] == png.headers["x-precision"]
        data = c.get("/api/jobs/1/generate?seeds=12,40,77&format=json").json()
    images = [Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB") for b in data["images"]]
    return png.headers["x-precision"], np.stack([np.asarray(i) for i in images]), data["precision"]


def test_the_explorer_draws_in_its_precision(root):
    header, fp32, said = _pictures(root, "auto")
    assert (header, said) == ("fp32", "fp32")  # auto on the CPU: the official pictures
    header, bf16, said = _pictures(root, "bf16")
    assert (header, said) == ("bf16", "bf16")
    diff = np.abs(bf16.astype(int) - fp32.astype(int))
    assert diff.max() > 0  # bf16 did run
    assert diff.max() <= 24  # a few grey levels (tests/generate/test_gen_precision.py)
    assert np.abs(fp32[1].astype(int) - fp32[0].astype(int)).mean() > 4 * diff.mean()


def test_fp16_on_the_cpu_is_refused_before_the_server_listens(tmp_path):
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        ModelCache(precision="fp16")
    result = CliRunner().invoke(
        app, ["serve", "--root", str(tmp_path / "root"), "--precision", "fp16", "--port", "0"]
    )
    assert user_error(result).startswith("--precision fp16 needs a CUDA GPU")
    assert not (tmp_path / "root").exists()  # no queue made either
