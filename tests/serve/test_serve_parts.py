"""The pieces under the routes: incremental stats reading, thinning, path checks, model cache."""

import json
import os
import shutil

import pytest
from fastapi import HTTPException

from heroforge.serve.models import ModelCache
from heroforge.serve.security import GRID_NAME, checked_name, inside
from heroforge.serve.stats import StatsCache, plot_data, thin


def _kimgs(cache, path, max_points=0):
    return [t["kimg"] for t in json.loads(cache.plot_json(path, max_points))["ticks"]]


def test_stats_cache_reads_only_what_was_appended(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text('{"kimg": 1}\n{"kimg": 2}\n')
    cache = StatsCache()
    assert _kimgs(cache, path) == [1, 2]
    with path.open("a") as f:
        f.write('not json\n{"kimg": 3}\n["a list"]\n{"kimg"')
    assert _kimgs(cache, path) == [1, 2, 3]
    # parsed lines are not parsed again (the trainer only appends): an edit before the
    # offset goes unseen, the torn line is read once complete
    with path.open("r+") as f:
        f.write('{"kimg": 9}')
    with path.open("a") as f:
        f.write(": 4}\n")
    assert _kimgs(cache, path) == [1, 2, 3, 4]
    assert json.loads(cache.plot_json(tmp_path / "missing.jsonl"))["count"] == 0


def test_stats_cache_answers_from_memory_until_the_file_grows(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text("".join(f'{{"kimg": {i}}}\n' for i in range(10)))
    cache = StatsCache()
    first = cache.plot_json(path, 3, run="r")
    assert cache.plot_json(path, 3, run="r") is first  # the same bytes, not encoded again
    assert json.loads(first)["run"] == "r"
    assert _kimgs(cache, path, 3) == [0, 4, 9]
    with path.open("a") as f:
        f.write('{"kimg": 10}\n')
    assert cache.plot_json(path, 3, run="r") is not first
    assert _kimgs(cache, path, 3) == [0, 5, 10]


def test_stats_cache_starts_over_on_a_rewritten_or_shorter_file(tmp_path):
    path = tmp_path / "stats.jsonl"
    path.write_text('{"kimg": 1}\n{"kimg": 2}\n{"kimg": 3}\n')
    cache = StatsCache(max_files=1)
    assert _kimgs(cache, path) == [1, 2, 3]
    (tmp_path / "new").write_text('{"kimg": 1}\n')
    os.replace(tmp_path / "new", path)  # as the trainer's atomic rewrite on resume
    assert _kimgs(cache, path) == [1]
    with path.open("r+") as f:
        f.truncate(0)  # shorter, same inode
    assert _kimgs(cache, path) == []
    other = tmp_path / "other.jsonl"
    other.write_text('{"kimg": 5}\n')
    assert _kimgs(cache, other) == [5]
    assert list(cache._files) == [other]  # one file kept


def test_thinning_keeps_the_ends_and_spreads_the_rest():
    items = [{"kimg": i} for i in range(1001)]
    assert [t["kimg"] for t in thin(items, 11)] == list(range(0, 1001, 100))
    assert thin(items, 0) is items
    assert thin(items[:5], 10) == items[:5]
    assert thin(items, 1) == [{"kimg": 1000}]


def test_plot_data_sorts_records_and_keeps_json_safe():
    records = [
        {"time": 1.0, "tick": 0, "kimg": 0.5, "loss/G": float("inf"), "note": "text", "ok": True},
        {"event": "metrics", "kimg": 0.5, "fid": float("nan")},
        {"event": "verdict", "kimg": 0.5, "verdict": "unstable", "reasons": ["NaN losses"]},
        {"event": "received SIGTERM: checkpoint after this step", "time": 2.0},
    ]
    data = plot_data(records)
    assert data["ticks"] == [{"kimg": 0.5}]
    assert data["keys"] == []
    assert data["metrics"] == [{"event": "metrics", "kimg": 0.5, "fid": None}]
    assert data["verdicts"][0]["reasons"] == ["NaN losses"]
    assert data["notes"] == [{"time": 2.0, "event": "received SIGTERM: checkpoint after this step"}]
    json.dumps(data, allow_nan=False)


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../x.png",
        "/etc/passwd",
        "grid-1kimg.png",
        "grid-000001kimg.png/..",
        "grid-000001.5kimg.png",
        "",
    ],
)
def test_names_must_match_their_pattern(name):
    with pytest.raises(HTTPException) as err:
        checked_name(GRID_NAME, name, "grid")
    assert err.value.status_code == 404
    assert checked_name(GRID_NAME, "grid-000012kimg.png", "grid") == "grid-000012kimg.png"
    assert checked_name(GRID_NAME, "grid-000012.500kimg.png", "grid") == "grid-000012.500kimg.png"


def test_inside_refuses_every_way_out(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "ok.png").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"s")
    (base / "link.png").symlink_to(tmp_path / "secret")
    assert inside(base, "ok.png") == (base / "ok.png").resolve()
    for parts in (("..", "secret"), ("../secret",), ("/etc/passwd",), ("link.png",), ("no.png",)):
        with pytest.raises(HTTPException):
            inside(base, *parts)


def test_model_cache_reloads_when_the_run_writes_a_snapshot(trained_run, tmp_path):
    run = tmp_path / trained_run.name
    shutil.copytree(trained_run, run)
    cache = ModelCache(size=1)
    first = cache.get(run)
    assert cache.get(run) is first
    assert first.G.img_resolution == 32
    marker = run / "checkpoints" / "latest.json"
    os.utime(marker, ns=(marker.stat().st_atime_ns, marker.stat().st_mtime_ns + 10**9))
    assert cache.get(run) is not first
    assert len(cache._loaded) == 1
