"""The explorer's pictures come from the job's trained model, drawn as `generate` draws them."""

import base64
import io

import numpy as np
import pytest
from PIL import Image


def _image(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _other_seed(client) -> bytes:
    """Another seed's picture: a tolerance that also accepted it would test nothing."""
    return client.get("/api/jobs/1/generate?seeds=40&trunc=0.7").content


def test_generate_draws_seeds_at_the_models_size(client):
    one = client.get("/api/jobs/1/generate?seeds=12&trunc=0.7")
    assert one.status_code == 200
    assert one.headers["content-type"] == "image/png"
    assert _image(one.content).shape == (32, 32, 3)
    grid = client.get("/api/jobs/1/generate?seeds=12,40,77&trunc=0.7")
    assert _image(grid.content).shape == (64, 64, 3)  # 3 pictures tiled 2 x 2
    data = client.get("/api/jobs/1/generate?seeds=12,40,77&trunc=0.7&format=json").json()
    assert data["seeds"] == [12, 40, 77]
    pictures = [_image(base64.b64decode(b)) for b in data["images"]]
    assert [p.shape for p in pictures] == [(32, 32, 3)] * 3
    # The same seed, the same hero. Alone or in a batch of three, the CPU's convolutions may
    # round differently (kernels depend on the batch size), so pixels may differ by a level.
    alone = _image(one.content).astype(int)
    assert np.abs(pictures[0].astype(int) - alone).max() <= 2
    assert np.abs(pictures[0].astype(int) - _image(_other_seed(client)).astype(int)).max() > 20
    assert np.array_equal(_image(grid.content)[:32, 32:], pictures[1])  # same batch: exact


def test_the_child_changes_with_the_weight(client):
    def child(weight: float) -> np.ndarray:
        response = client.get(f"/api/jobs/1/child?a=12&b=40&weight={weight}&trunc=0.7")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        return _image(response.content)

    a, b = (
        _image(client.get(f"/api/jobs/1/generate?seeds={s}&trunc=0.7").content) for s in (12, 40)
    )
    assert child(0.5).shape == (32, 32, 3)
    # The child's parents are mapped together in one batch, `generate` maps each seed alone:
    # as above, the CPU's kernels may round differently by batch size (seen on AVX-512)
    first, second = child(0.0), child(1.0)
    for drawn, parent in ((first, a), (second, b)):
        assert np.abs(drawn.astype(int) - parent.astype(int)).max() <= 2
    assert np.abs(a.astype(int) - b.astype(int)).max() > 20
    # the children among themselves share one code path: exact comparisons
    middle, near_a = child(0.5), child(0.25)
    assert not np.array_equal(middle, first)
    assert not np.array_equal(middle, second)
    assert not np.array_equal(middle, near_a)
    assert not np.array_equal(near_a, first)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("generate?seeds=abc", 400),
        ("generate?seeds=0-99", 400),  # more than one request should draw
        ("generate?seeds=-3", 400),
        ("generate?seeds=1&trunc=nan", 400),
        ("generate?seeds=1&trunc=5", 400),
        ("generate?seeds=1&format=gif", 422),
        ("child?a=1&b=2&weight=1.5", 422),
        ("child?a=1&weight=0.5", 422),
        ("child?a=1&b=4294967296", 422),
    ],
)
def test_explorer_refuses_bad_arguments(client, query, status):
    response = client.get(f"/api/jobs/1/{query}")
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_a_job_without_a_model_is_not_found(client):
    response = client.get("/api/jobs/2/generate?seeds=1")
    assert response.status_code == 404
    assert "no run folder" in response.json()["detail"]
