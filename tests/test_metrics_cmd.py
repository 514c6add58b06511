"""`heroforge metrics`: the official metric names, JSON lines shaped like the official
metric-NAME.jsonl records, FID over every dataset image (the "_full" reals, no x-flips).

A stand-in feature network (TorchScript with the InceptionV3 interface: 299 x 299 RGB in,
a feature row out) keeps the tests fast; the real weights go the same way through --inception.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers.networks import make_generator
from heroforge.data.dataset import ImageDataset
from heroforge.metrics import stats
from heroforge.metrics.evaluate import fake_features
from heroforge.metrics.inception import InceptionFeatures
from heroforge.nets.weights import save_networks

FIELDS = {"results", "metric", "total_time", "total_time_str", "num_gpus", "snapshot_pkl"}
FIELDS |= {"timestamp", "num_gen"}
# torch.jit's save, trace and load of the stand-in are deprecated, but they are its format
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


class _PooledPixels(torch.nn.Module):
    """48 features: each channel averaged over a 4 x 4 grid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


@pytest.fixture
def standin(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the real-feature cache
    path = tmp_path / "standin.pt"
    torch.jit.save(torch.jit.trace(_PooledPixels(), torch.zeros(1, 3, 299, 299)), str(path))
    return path


@pytest.fixture
def model_path(tmp_path):
    gen, cfg = make_generator(seed=5)
    path = tmp_path / "tiny.safetensors"
    save_networks(path, {"G_ema": gen}, cfg)
    return path


def run_metrics(cli, model_path, archive, standin, *extra):
    return cli("metrics", "--model", str(model_path), "--data", str(archive),
               "--inception", str(standin), "--device", "cpu", *extra)  # fmt: skip


@pytest.mark.slow
def test_official_names_records_and_full_reals(cli, model_path, tiny_archive, standin, tmp_path):
    out = tmp_path / "metric-all.jsonl"
    chosen = ["--metrics", "fid50k_full,kid50k_full,pr50k3_full", "--num", "16"]
    code, stdout, err = run_metrics(cli, model_path, tiny_archive, standin, *chosen,
                                    "--out", str(out))  # fmt: skip
    assert code == 0, err
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["metric"] for r in records] == ["fid50k_full", "kid50k_full", "pr50k3_full"]
    for record in records:
        assert set(record) == FIELDS
        assert record["snapshot_pkl"] == str(model_path)
        assert record["num_gen"] == 16
    assert set(records[1]["results"]) == {"kid50k_full"}
    pr = records[2]["results"]
    assert set(pr) == {"pr50k3_full_precision", "pr50k3_full_recall"}
    assert all(0 <= v <= 1 for v in pr.values())
    assert out.read_text() == stdout

    # FID against every dataset image, computed here from the same features
    features = InceptionFeatures(standin)
    dataset = ImageDataset(tiny_archive, resolution=32)
    reals = features(torch.stack([dataset[i][0] for i in range(dataset.num_images)])).numpy()
    assert dataset.num_images > 16  # so that taking only --num reals would give another FID
    fake = np.concatenate(fake_features(make_generator(seed=5)[0].eval(), features, 16, "cpu"))
    expected = stats.fid(*stats.mean_cov(reals), *stats.mean_cov(fake))
    assert records[0]["results"]["fid50k_full"] == pytest.approx(expected, rel=1e-6)

    code, _, err = run_metrics(cli, model_path, tiny_archive, standin, "--num", "16",
                               "--out", str(out))  # fmt: skip
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert len(lines) == 4  # appended, as the official metric files grow
    assert json.loads(lines[3])["results"]["fid50k_full"] == records[0]["results"]["fid50k_full"]


def test_unknown_metrics_and_numbers_get_one_line(cli, model_path, tiny_archive, standin):
    for extra, expected in (
        (["--metrics", "fid50k_full,ppl_zfull"], "ppl_zfull is not one of fid50k_full"),
        (["--num", "1"], "--num 1 is not allowed"),
    ):
        code, _, err = run_metrics(cli, model_path, tiny_archive, standin, *extra)
        assert code == 2
        assert err.count("\n") == 1
        assert expected in err
