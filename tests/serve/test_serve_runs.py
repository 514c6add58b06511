"""`heroforge serve --runs DIR`: run folders that no queue started, listed beside the jobs,
read-only, on copies of a real tiny run."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from heroforge import rundir
from heroforge.commands.serve import serve_command
from heroforge.errors import UserError
from heroforge.serve.app import create_app
from serve.conftest import LOCAL, TOKEN

HOUR_AGO = time.time() - 3600
SECRET = b"SECRET-do-not-serve"


def _age(run: Path) -> None:
    """As if the trainer last wrote an hour ago."""
    for name in (rundir.STATS, rundir.RUN_JSON):
        os.utime(run / name, (HOUR_AGO, HOUR_AGO))


@pytest.fixture
def runs(tmp_path, trained_run) -> Path:
    """A `train --outdir` folder with four runs: finished, crashed, running, silent (no ending,
    nothing written for an hour: killed with -9)."""
    folder = tmp_path / "runs"
    for name in ("00000-finished", "00001-crashed", "00002-running", "00003-silent"):
        shutil.copytree(trained_run, folder / name)
    rundir.write_ending(
        folder / "00001-crashed", "crashed", 32, None, "RuntimeError: out of memory"
    )
    for name in ("00002-running", "00003-silent"):
        rundir.clear_ending(folder / name)
    for name in ("00000-finished", "00001-crashed", "00003-silent"):
        _age(folder / name)
    return folder


def _client(root: Path, *run_dirs: Path, token: str | None = None) -> TestClient:
    base = LOCAL if token is None else "http://203.0.113.7:8765"
    return TestClient(create_app(root, token, run_dirs=run_dirs), base_url=base)


def _rows(client: TestClient) -> dict[str, dict]:
    response = client.get("/api/runs")
    assert response.status_code == 200, response.text
    return {row["name"]: row for row in response.json()}


def test_runs_outside_the_queue_are_listed_with_progress_and_ending(root, runs, trained_run):
    rows = _rows(_client(root, runs))
    assert list(rows) == ["00000-finished", "00001-crashed", "00002-running", "00003-silent"]
    states = {name: row["state"] for name, row in rows.items()}
    assert states == {
        "00000-finished": "finished",
        "00001-crashed": "crashed",
        "00002-running": "running",
        "00003-silent": "silent",
    }
    made = json.loads((trained_run / "run.json").read_text())
    done = rows["00000-finished"]
    assert done["id"] == "0/00000-finished"
    assert (done["data"], done["precision"]) == (made["data"], made["precision"])
    assert (done["target_kimg"], done["kimg"]) == (0.064, 0.064)
    assert done["sec_per_kimg"] > 0
    assert done["grid"] == "grid-000000.064kimg.png"
    assert done["ending"]["how"] == "finished"
    assert done["reason"] is None
    assert rows["00001-crashed"]["ending"]["error"] == "RuntimeError: out of memory"
    assert rows["00003-silent"]["quiet_s"] >= 3500


def test_the_best_fid_is_the_lowest_measured(root, runs):
    with (runs / "00000-finished" / rundir.STATS).open("a") as f:
        for kimg, fid in ((0.032, 250.5), (0.064, 180.25), (0.096, 199.0)):
            f.write(json.dumps({"event": "metrics", "kimg": kimg, "fid": fid}) + "\n")
    row = _rows(_client(root, runs))["00000-finished"]
    assert (row["best_fid"], row["best_fid_kimg"]) == (180.25, 0.064)


def test_a_run_folder_may_be_given_itself(root, runs):
    client = _client(root, runs / "00001-crashed", runs)
    listed = client.get("/api/runs").json()
    # the same folder through both: once, under the first way to it
    assert [row["id"] for row in listed] == [
        "0/00001-crashed",
        "1/00000-finished",
        "1/00002-running",
        "1/00003-silent",
    ]
    assert client.get("/api/runs/0/00001-crashed").json()["state"] == "crashed"
    assert client.get("/api/runs/0/00000-finished").status_code == 404  # not the one given


def test_a_run_the_queue_knows_appears_once_as_its_job(root, runs):
    job_runs = root / "jobs" / "0001" / "runs"
    client = _client(root, job_runs, runs)
    assert len(client.get("/api/runs").json()) == 4  # the four of `runs`, not the job's
    assert [job["id"] for job in client.get("/api/jobs").json()] == [1, 2]


def test_a_run_started_after_the_server_shows_up(root, runs, trained_run):
    client = _client(root, runs)
    assert len(client.get("/api/runs").json()) == 4
    shutil.copytree(trained_run, runs / "00004-later")
    assert "00004-later" in _rows(client)


def test_one_run_and_its_snapshots_stats_and_grids(root, runs):
    client = _client(root, runs)
    run = client.get("/api/runs/0/00000-finished").json()
    assert run["state"] == "finished"
    assert [c["kimg"] for c in run["checkpoints"]] == [0.032, 0.064]
    assert run["latest"] == run["checkpoints"][-1]["name"]
    stats = client.get("/api/runs/0/00000-finished/stats?max_points=1").json()
    assert (stats["count"], [t["kimg"] for t in stats["ticks"]]) == (2, [0.064])
    grids = client.get("/api/runs/0/00000-finished/grids").json()
    assert grids[-1]["name"] == run["grid"]
    png = client.get(f"/api/runs/0/00000-finished/grids/{run['grid']}")
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")


def test_damaged_files_give_a_reason_on_their_row_not_an_error(root, runs):
    (runs / "00000-finished" / rundir.RUN_JSON).write_text('{"data": "/x", "total_k')
    stats = runs / "00001-crashed" / rundir.STATS
    lines = stats.read_text().splitlines(keepends=True)
    stats.write_text(lines[0] + '{"kimg": 0.0{"kimg": 1}\n' + "".join(lines[1:]) + '{"kimg": 0.')
    (runs / "00003-silent" / rundir.RUN_JSON).write_text("[1, 2]")
    rows = _rows(_client(root, runs))
    damaged_json = rows["00000-finished"]
    assert damaged_json["reason"].startswith("run.json cannot be read: ")
    assert (damaged_json["data"], damaged_json["target_kimg"]) == (None, None)
    assert damaged_json["kimg"] == 0.064  # the rest of the folder still speaks
    assert rows["00001-crashed"]["reason"] == (
        "stats.jsonl: 1 damaged line(s), the first is line 2; "
        "stats.jsonl ends in a half-written line"
    )
    assert rows["00001-crashed"]["kimg"] == 0.064
    assert "not a JSON object" in rows["00003-silent"]["reason"]
    # a run still training is writing its last line: that is no damage
    with (runs / "00002-running" / rundir.STATS).open("a") as f:
        f.write('{"kimg": 0.')
    assert _rows(_client(root, runs))["00002-running"]["reason"] is None


def test_values_json_cannot_carry_are_left_out(root, runs):
    run = runs / "00000-finished"
    made = json.loads((run / rundir.RUN_JSON).read_text())
    (run / rundir.RUN_JSON).write_text(
        json.dumps({**made, "total_kimg": float("inf"), "data": 5})  # an older or edited file
    )
    row = _rows(_client(root, runs))["00000-finished"]
    assert (row["target_kimg"], row["data"]) == (None, None)


TRAVERSALS = [
    "/api/runs/0/../../../secret/stats",
    "/api/runs/0/%2e%2e",
    "/api/runs/0/..%2F..%2Fsecret",
    "/api/runs/0/%2e%2e%2fsecret/stats",
    "/api/runs/0/.hidden",
    "/api/runs/0/00000-finished%2F..%2F..%2Fsecret",
    "/api/runs/0/00000-finished/grids/..%2F..%2Frun.json",
    "/api/runs/0/00000-finished/grids/%2e%2e",
    "/api/runs/0/00000-finished/grids/%2Fetc%2Fpasswd",
    "/api/runs/0/00000-finished/grids//etc/passwd",
    "/api/runs/1/00000-finished",
    "/api/runs/-1/00000-finished",
    "/api/runs/%2e%2e/00000-finished",
    "/api/runs/0/00000-linked",
    "/api/runs/0/00000-linked/grids/grid-000000.064kimg.png",
    "/api/runs/0/00000-finished/grids/grid-000009kimg.png",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_outside_the_runs_folders_can_be_named(root, runs, tmp_path, trained_run, path):
    secret = tmp_path / "secret"
    shutil.copytree(trained_run, secret)  # a run folder, but not under --runs
    (secret / "secret.txt").write_bytes(SECRET)
    (runs / "00000-linked").symlink_to(secret, target_is_directory=True)
    grid = runs / "00000-finished" / "samples" / "grid-000009kimg.png"
    grid.symlink_to(secret / "secret.txt")
    client = _client(root, runs)
    response = client.get(path)
    assert response.status_code in (400, 404), response.text
    assert SECRET not in response.content
    assert b"dataset_fingerprint" not in response.content
    listed = client.get("/api/runs").json()
    assert "00000-linked" not in [row["name"] for row in listed]
    assert "grid-000009kimg.png" not in str(client.get("/api/runs/0/00000-finished/grids").json())


def test_the_run_list_needs_the_token(root, runs):
    client = _client(root, runs, token=TOKEN)
    assert client.get("/api/runs").status_code == 401
    assert client.get("/api/runs/0/00000-finished/grids").status_code == 401
    listed = client.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"})
    assert len(listed.json()) == 4


def test_a_runs_folder_that_does_not_exist_or_cannot_be_named_is_one_line(tmp_path, trained_run):
    with pytest.raises(UserError, match=r"^--runs .*missing: there is no such folder$"):
        serve_command(root=tmp_path / "root", port=0, token=None, runs=[tmp_path / "missing"])
    odd = tmp_path / "my run"
    shutil.copytree(trained_run, odd)
    with pytest.raises(UserError, match="name must be letters, digits"):
        serve_command(root=tmp_path / "root", port=0, token=None, runs=[odd])


def test_the_queue_page_has_the_run_table(root, runs):
    page = _client(root, runs).get("/")
    assert 'id="runs"' in page.text
    script = _client(root, runs).get("/static/queue.js").text
    assert "/api/runs" in script
