import numpy as np
import pytest
import torch

from heroforge.config import load_config
from heroforge.data.dataset import ImageDataset
from heroforge.errors import UserError
from heroforge.metrics import evaluate as evaluate_module
from heroforge.metrics import stats
from heroforge.metrics.evaluate import _gather_batches, evaluate, fake_features
from heroforge.metrics.inception import InceptionFeatures
from heroforge.nets.generator import build_generator


def test_fid_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = rng.uniform(0.5, 2, 8), rng.uniform(0.5, 2, 8)
    expected = np.square(mu1 - mu2).sum() + np.sum(s1**2 + s2**2 - 2 * s1 * s2)
    got = stats.fid(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-9)
    assert stats.fid(mu1, np.diag(s1**2), mu1, np.diag(s1**2)) == pytest.approx(0, abs=1e-9)


def test_kid_and_precision_recall_see_shift_and_collapse():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 16))
    same = rng.normal(size=(400, 16))
    shifted = rng.normal(size=(400, 16)) + 1.5
    assert abs(stats.kid(real, same, subsets=20, subset_size=200)) < 0.02
    assert stats.kid(real, shifted, subsets=20, subset_size=200) > 0.1
    p, r = stats.precision_recall(real, same)
    assert p > 0.6
    assert r > 0.6  # k-NN balls in 16-D with 400 points miss some
    collapsed = rng.normal(size=(400, 16)) * 0.05  # every sample near one point: no diversity
    p, r = stats.precision_recall(real, collapsed)
    assert p > 0.6
    assert r < 0.2


def test_missing_inception_weights_are_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="cannot load InceptionV3 weights"):
        InceptionFeatures(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(UserError, match="cannot load InceptionV3 weights"):
        InceptionFeatures(bad)


@pytest.mark.slow
def test_fid_of_a_generator_against_its_dataset(tiny_archive, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cfg = load_config("tiny-cpu")
    dataset = ImageDataset(tiny_archive, resolution=32)
    torch.manual_seed(0)
    G = build_generator(cfg).eval()  # noqa: N806
    result = evaluate(G, dataset, cfg.metrics, torch.device("cpu"), num_images=24)
    assert result["fid"] > 10
    assert result["num_fake"] == 24
    assert 0 <= result["precision"] <= 1
    assert 0 <= result["recall"] <= 1
    assert list((tmp_path / "heroforge" / "metrics").glob("reals-*.npz"))  # reals cached
    again = evaluate(G, dataset, cfg.metrics, torch.device("cpu"), num_images=24)
    assert again["fid"] == result["fid"]  # fixed latents: comparable over time


class _RecordingDataset(ImageDataset):
    """Remembers which images were read."""

    def __getitem__(self, index: int):
        self.read = [*getattr(self, "read", []), index]
        return super().__getitem__(index)


def _evaluate_on_rank(rank: int, init_file: str, archive: str, results: dict) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        evaluate_module.BATCH = 8  # as in the parent
        cfg = load_config("tiny-cpu")
        torch.manual_seed(0)
        G = build_generator(cfg).eval()  # noqa: N806
        dataset = _RecordingDataset(archive, resolution=32)
        cpu = torch.device("cpu")
        result = evaluate(G, dataset, cfg.metrics, cpu, num_images=24, rank=rank, world=2)
        # the batches come back in order: features that tell every image apart
        batches = fake_features(G, _pixels_as_features, 24, cpu, rank=rank, world=2)
        results[rank] = (result, _gather_batches(batches, 2), sorted(set(dataset.read)))
    finally:
        dist.barrier()
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_share_the_images_and_give_one_process_result(
    tiny_archive, tmp_path, monkeypatch
):
    """24 images = 3 batches of 8: rank 0 makes two, rank 1 one; rank 0 gathers them in order.
    The real images' features are not cached for the two processes: they share them too."""
    import torch.multiprocessing as mp

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "alone"))
    monkeypatch.setattr(evaluate_module, "BATCH", 8)
    cfg = load_config("tiny-cpu")
    torch.manual_seed(0)
    G = build_generator(cfg).eval()  # noqa: N806
    alone = evaluate(
        G,
        ImageDataset(tiny_archive, resolution=32),
        cfg.metrics,
        torch.device("cpu"),
        num_images=24,
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "shared"))  # the processes inherit it
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(
            _evaluate_on_rank,
            args=(str(tmp_path / "init"), str(tiny_archive), results),
            nprocs=2,
        )
        results = dict(results)
    assert results[1][:2] == (None, None)
    assert results[0][2] == [*range(8), *range(16, 24)]
    assert results[1][2] == list(range(8, 16))
    assert results[0][0] == pytest.approx(alone, rel=1e-6)
    one = np.concatenate(fake_features(G, _pixels_as_features, 24, torch.device("cpu")))
    np.testing.assert_allclose(results[0][1], one, rtol=1e-5, atol=1e-6)
    [cache_alone] = (tmp_path / "alone").rglob("reals-*.npz")
    [cache_shared] = (tmp_path / "shared").rglob("reals-*.npz")
    with np.load(cache_alone) as a, np.load(cache_shared) as b:
        assert len(a["rows"]) == 24  # three batches of real images, in order
        np.testing.assert_allclose(b["rows"], a["rows"], rtol=1e-5, atol=1e-6)


def _pixels_as_features(images: torch.Tensor) -> torch.Tensor:
    return images.flatten(1)[:, :16]
