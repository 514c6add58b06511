"""The JSON API over a real manager root: jobs, stats for the plots, grids, and the actions."""

import errno
import io
import json
import sqlite3

import pytest
from PIL import Image

from heroforge.config_sections import MAX_PRIORITY
from heroforge.errors import UserError
from heroforge.manager import open_queue
from heroforge.manager import queue as queue_module
from heroforge.manager.queue import check_priority


def test_jobs_lists_every_job_with_its_progress(client):
    jobs = client.get("/api/jobs").json()
    assert [(j["id"], j["state"]) for j in jobs] == [(1, "running"), (2, "queued")]
    running = jobs[0]
    assert running["kimg"] == 0.064
    assert running["target_kimg"] == 0.064
    assert (running["eta_s"], running["lost_s"], running["restarts"]) == (12.5, 4.0, 0)
    assert running["verdict"] == "stable"
    assert running["supervisor"] == "test-supervisor"


def test_job_detail_has_queue_events_and_snapshots(client):
    job = client.get("/api/jobs/1").json()
    assert [e["kind"] for e in job["events"]] == ["submitted", "claimed"]
    run = job["run"]
    assert run["name"].endswith("-tiny-cpu")
    assert run["grids"] == 3
    assert [c["kimg"] for c in run["checkpoints"]] == [0.032, 0.064]
    assert run["latest"] == run["checkpoints"][-1]["name"]
    assert run["best"] is None
    assert client.get("/api/jobs/2").json()["run"] is None  # queued: no run folder yet


def test_stats_hold_the_ticks_and_verdicts_to_plot(client):
    stats = client.get("/api/jobs/1/stats").json()
    assert stats["count"] == 2
    assert [t["kimg"] for t in stats["ticks"]] == [0.032, 0.064]
    assert {"loss/G", "loss/D", "augment_p", "rt", "sec_per_kimg"} <= set(stats["keys"])
    assert "time" not in stats["ticks"][0]  # only what a plot uses
    assert [(v["kimg"], v["verdict"]) for v in stats["verdicts"]] == [(0.064, "stable")]
    assert stats["metrics"] == []  # the tiny preset measures no FID
    thinned = client.get("/api/jobs/1/stats?max_points=1").json()
    assert [t["kimg"] for t in thinned["ticks"]] == [0.064]
    assert thinned["count"] == 2
    assert client.get("/api/jobs/2/stats").status_code == 404


def test_stats_follow_a_growing_file_and_survive_nan_and_torn_lines(client, root):
    run = next((root / "jobs" / "0001" / "runs").iterdir())
    assert client.get("/api/jobs/1/stats").json()["count"] == 2
    tick = {"kimg": 0.096, "loss/G": float("nan"), "loss/D": 0.5, "augment_p": 0.01}
    metric = {"event": "metrics", "kimg": 0.096, "fid": 321.5}
    with (run / "stats.jsonl").open("a") as f:
        f.write(json.dumps(tick) + "\n" + json.dumps(metric) + "\n" + '{"kimg": 0.1')
    stats = client.get("/api/jobs/1/stats").json()
    assert stats["count"] == 3  # the torn last line waits until it is complete
    assert stats["ticks"][-1] == {"kimg": 0.096, "loss/D": 0.5, "augment_p": 0.01}  # NaN: a gap
    assert [(m["kimg"], m["fid"]) for m in stats["metrics"]] == [(0.096, 321.5)]
    with (run / "stats.jsonl").open("a") as f:
        f.write('28, "loss/G": 1.0}\n')  # the torn line, completed
    assert client.get("/api/jobs/1/stats").json()["ticks"][-1] == {"kimg": 0.128, "loss/G": 1.0}
    # a resume rewrites the file (a new inode): it is read again from the top
    lines = (run / "stats.jsonl").read_text().splitlines()[:1]
    (run / "stats.new").write_text("\n".join(lines) + "\n")
    (run / "stats.new").replace(run / "stats.jsonl")
    assert client.get("/api/jobs/1/stats").json()["count"] == 1


def test_grids_are_listed_oldest_first_and_served_as_png(client):
    grids = client.get("/api/jobs/1/grids").json()
    assert grids == [  # one per checkpoint, every 0.032 kimg; and an older run's name
        {"name": "grid-000000kimg.png", "kimg": 0},
        {"name": "grid-000000.032kimg.png", "kimg": 0.032},
        {"name": "grid-000000.064kimg.png", "kimg": 0.064},
    ]
    response = client.get("/api/jobs/1/grids/grid-000000.064kimg.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (8 * 32, 4 * 32)  # 32 fixed seeds of 32 px, 8 per row
    assert client.get("/api/jobs/1/grids/grid-000000.096kimg.png").status_code == 404


def test_actions_change_the_queue(client, root):
    queue = open_queue(root)
    assert client.post("/api/jobs/2/pause", json={}).json()["state"] == "paused"
    assert queue.get(2).state == "paused"
    assert client.post("/api/jobs/2/resume", json={}).json()["state"] == "queued"
    assert client.post("/api/jobs/2/priority", json={"priority": 7}).json()["priority"] == 7
    assert queue.get(2).priority == 7
    assert client.post("/api/jobs/2/cancel", json={}).json()["state"] == "cancelled"
    refused = client.post("/api/jobs/2/cancel", json={})
    assert refused.status_code == 409
    assert "already cancelled" in refused.json()["detail"]
    # a running job gets a request that its supervisor carries out
    paused = client.post("/api/jobs/1/pause", json={}).json()
    assert (paused["state"], paused["request"]) == ("running", "pause")


def test_actions_refuse_bad_input(client):
    assert client.post("/api/jobs/2/priority", json={"priority": "high"}).status_code == 422
    assert client.post("/api/jobs/2/priority", json={"priority": 10**30}).status_code == 422
    assert client.post("/api/jobs/2/resume", json={}).status_code == 409  # not paused
    assert client.post("/api/jobs/9/pause", json={}).status_code == 404
    assert client.post("/api/jobs/2/explode", json={}).status_code in (404, 405)


def _checkpoints(root):
    return next((root / "jobs" / "0001" / "runs").iterdir()) / "checkpoints"


def test_use_as_best_writes_best_json_that_generate_loads(client, root):
    from heroforge.nets.loading import load_model

    folder = _checkpoints(root)
    older, newer = (c["name"] for c in client.get("/api/jobs/1").json()["run"]["checkpoints"])
    before = client.get("/api/jobs/1/generate?seeds=12").content  # drawn with the newest
    answer = client.post("/api/jobs/1/best", json={"name": older})
    assert answer.status_code == 200
    assert answer.json()["best"] == older
    assert client.get("/api/jobs/1").json()["run"]["best"] == older
    assert load_model(folder.parent)[1] == folder / older  # what `heroforge generate` draws with
    assert client.get("/api/jobs/1/generate?seeds=12").content != before  # the explorer too
    assert not list(folder.glob(".best.json.*"))  # written atomically: no temp file left
    # the same format as training's markers: the newest marked best reads like latest.json
    client.post("/api/jobs/1/best", json={"name": newer})
    assert (folder / "best.json").read_bytes() == (folder / "latest.json").read_bytes()
    assert json.loads((folder / "best.json").read_text())["sha256"]


def test_use_as_best_refuses_what_is_not_a_snapshot_of_the_run(client, root, token_client):
    folder = _checkpoints(root)
    name = sorted(p.name for p in folder.glob("ckpt-*.safetensors"))[0]
    elsewhere = root.parent / "ckpt-000000099999.safetensors"
    elsewhere.write_bytes((folder / name).read_bytes())
    (folder / "ckpt-000000099999.safetensors").symlink_to(elsewhere)
    (folder / "ckpt-000000088888.safetensors").write_bytes(b"no sidecar")
    cases = [
        ("/api/jobs/1/best", {"name": "../latest.json"}, 404),
        ("/api/jobs/1/best", {"name": "ckpt-1.safetensors"}, 404),
        ("/api/jobs/1/best", {"name": "ckpt-000000777777.safetensors"}, 404),  # not on disk
        ("/api/jobs/1/best", {"name": "ckpt-000000099999.safetensors"}, 404),  # a symlink
        ("/api/jobs/1/best", {"name": "ckpt-000000088888.safetensors"}, 404),  # no sidecar
        ("/api/jobs/1/best", {"name": "x" * 100}, 422),
        ("/api/jobs/1/best", {}, 422),
        ("/api/jobs/2/best", {"name": name}, 404),  # queued: no run folder
        ("/api/jobs/9/best", {"name": name}, 404),
    ]
    for path, body, status in cases:
        assert client.post(path, json=body).status_code == status, body
    evil = {"origin": "http://evil.example"}
    assert client.post("/api/jobs/1/best", json={"name": name}, headers=evil).status_code == 403
    assert client.post("/api/jobs/1/best", data={"name": name}).status_code == 415
    assert token_client.post("/api/jobs/1/best", json={"name": name}).status_code == 401
    assert not (folder / "best.json").exists()


def test_the_page_accepts_every_priority_the_cli_accepts(client):
    for priority in (MAX_PRIORITY, -MAX_PRIORITY):
        answer = client.post("/api/jobs/2/priority", json={"priority": priority})
        assert answer.json()["priority"] == priority
        check_priority(priority)  # what `heroforge queue priority` checks
    for priority in (MAX_PRIORITY + 1, -MAX_PRIORITY - 1):
        assert client.post("/api/jobs/2/priority", json={"priority": priority}).status_code == 422
        with pytest.raises(UserError, match="within"):
            check_priority(priority)


def test_a_locked_queue_is_a_503_with_one_line(client, root, monkeypatch):
    monkeypatch.setattr(queue_module, "BUSY_TIMEOUT_MS", 200)
    blocker = sqlite3.connect(root / "queue.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for method, path in (
            ("get", "/api/jobs"),
            ("get", "/api/jobs/1"),
            ("post", "/api/jobs/2/pause"),
        ):
            answer = client.request(method, path, json={} if method == "post" else None)
            assert answer.status_code == 503, path
            detail = answer.json()["detail"]
            assert "locked by another process" in detail, detail
            assert "\n" not in detail
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert client.get("/api/jobs").status_code == 200


def test_use_as_best_on_a_full_disk_is_a_503_and_keeps_best_json(client, root, monkeypatch):
    folder = _checkpoints(root)
    name = sorted(p.name for p in folder.glob("ckpt-*.safetensors"))[0]

    def no_space(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("heroforge.fileio.os.replace", no_space)
    answer = client.post("/api/jobs/1/best", json={"name": name})
    assert answer.status_code == 503
    detail = answer.json()["detail"]
    assert detail.startswith(f"cannot write {folder / 'best.json'}: ")
    assert "\n" not in detail
    assert not (folder / "best.json").exists()
