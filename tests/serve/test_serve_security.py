"""Nothing outside the roots can be read, and nothing can be done without the token."""

import os
import re
import sqlite3
import subprocess
import sys

import httpx
import pytest

from heroforge.commands.serve import serve_command
from heroforge.errors import UserError
from heroforge.manager import open_queue
from heroforge.serve.app import create_app
from heroforge.serve.security import check_bind

SECRET = b"SECRET-do-not-serve"

TRAVERSALS = [
    "/api/jobs/1/grids/..%2F..%2F..%2F..%2Fqueue.sqlite3",
    "/api/jobs/1/grids/%2e%2e%2f%2e%2e%2fconfig.toml",
    "/api/jobs/1/grids/%2e%2e",
    "/api/jobs/1/grids/..%5cstats.jsonl",
    "/api/jobs/1/grids/%2Fetc%2Fpasswd",
    "/api/jobs/1/grids//etc/passwd",
    "/api/jobs/1/grids/grid-000000kimg.png%00.txt",
    "/api/jobs/%2e%2e/grids",
    "/api/jobs/1%2f..%2f2/stats",
    "/api/jobs/-1/stats",
    "/api/jobs/1e3/stats",
    "/api/review/thumb/..%2F..%2Fmanifest.jsonl",
    "/api/review/thumb/%2e%2e%2f%2e%2e%2foverrides.csv",
    "/api/review/thumb/%2Fetc%2Fpasswd",
    "/api/review/thumb/../../manifest.jsonl",
    "/static/..%2f..%2fapp.py",
    "/static/%2e%2e/%2e%2e/app.py",
    "/static//etc/passwd",
    "/job/..%2f..%2fqueue.sqlite3",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(client, path):
    response = client.get(path)
    assert response.status_code in (400, 404), response.text
    assert b"SQLite" not in response.content
    assert b"root:" not in response.content
    assert b"import" not in response.content
    assert b"sha256" not in response.content


def test_symlinks_out_of_the_roots_are_refused(client, root, prepared, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET)
    samples = next((root / "jobs" / "0001" / "runs").iterdir()) / "samples"
    (samples / "grid-000005kimg.png").symlink_to(secret)
    assert client.get("/api/jobs/1/grids/grid-000005kimg.png").status_code == 404
    assert "grid-000005kimg.png" not in str(client.get("/api/jobs/1/grids").json())
    thumb = f"{'a' * 64}.jpg"
    (prepared / ".cache" / "thumbs" / thumb).symlink_to(secret)
    assert client.get(f"/api/review/thumb/{thumb}").status_code == 404


def test_a_run_folder_linked_from_elsewhere_is_not_shown(client, root, trained_run):
    runs = root / "jobs" / "0002" / "runs"
    runs.mkdir()
    (runs / "00000-elsewhere").symlink_to(trained_run, target_is_directory=True)
    for path in ("/api/jobs/2/stats", "/api/jobs/2/grids", "/api/jobs/2/generate?seeds=1"):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/jobs/2").json()["run"] is None


def test_a_queue_row_pointing_outside_the_root_is_not_followed(client, root, trained_run):
    with sqlite3.connect(root / "queue.sqlite3") as db:
        db.execute("UPDATE jobs SET job_dir = ? WHERE id = 1", (str(trained_run.parent),))
    assert client.get("/api/jobs/1/stats").status_code == 404
    assert client.get("/api/jobs/1/grids/grid-000000kimg.png").status_code == 404


def test_every_request_needs_the_token(token_client, token):
    bearer = {"authorization": f"Bearer {token}"}
    for path in ("/", "/job/1", "/api/jobs", "/api/jobs/1/stats", "/static/common.js"):
        assert token_client.get(path).status_code == 401, path
        assert token_client.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401
        assert token_client.get(f"{path}?token={token}x").status_code == 401
    assert token_client.get("/api/jobs", headers=bearer).status_code == 200
    assert token_client.get(f"/api/jobs?token={token}").status_code == 200
    grid = f"/api/jobs/1/grids/grid-000000kimg.png?token={token}"  # how an <img> asks
    assert token_client.get(grid).status_code == 200
    assert token_client.post("/api/jobs/2/pause", json={}).status_code == 401
    assert token_client.post("/api/jobs/2/pause", json={}, headers=bearer).status_code == 200


def test_without_a_token_only_loopback_names_are_answered(client):
    # a page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) gets nothing
    assert client.get("/api/jobs", headers={"host": "evil.example:8765"}).status_code == 400
    for host in ("localhost:8765", "127.0.0.1", "[::1]:8765"):
        assert client.get("/api/jobs", headers={"host": host}).status_code == 200, host


def test_cross_site_and_form_posts_are_refused(client, root):
    evil = {"origin": "http://evil.example"}
    assert client.post("/api/jobs/2/cancel", json={}, headers=evil).status_code == 403
    assert client.post("/api/jobs/2/cancel", data={"x": "1"}).status_code == 415
    assert client.post("/api/jobs/2/cancel").status_code == 415
    assert open_queue(root).get(2).state == "queued"
    same = {"origin": "http://127.0.0.1:8765"}
    assert client.post("/api/jobs/2/cancel", json={}, headers=same).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_a_non_local_host_needs_a_token(host, tmp_path):
    with pytest.raises(UserError, match="--token"):
        check_bind(host, None)
    with pytest.raises(UserError, match="--token"):
        serve_command(root=tmp_path, host=host, port=0, token=None, prepared=None)
    check_bind(host, "a-long-enough-token-123")


def test_loopback_needs_no_token_and_weak_tokens_are_refused(tmp_path):
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, None)
    for weak in ("short", "has spaces in the token!!", "x" * 300):
        with pytest.raises(UserError, match="16 to 256"):
            check_bind("127.0.0.1", weak)
        with pytest.raises(UserError, match="16 to 256"):
            create_app(tmp_path, weak)


def test_serve_command_listens_with_uvicorn(root, token):
    """The real server in its own process: it says where it listens, and answers there."""
    code = (
        "import sys; from pathlib import Path; from heroforge.commands.serve import serve_command; "
        "serve_command(root=Path(sys.argv[1]), host='127.0.0.1', port=0, token=sys.argv[2], "
        "prepared=None)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-c", code, str(root), token], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        line = server.stdout.readline()
        url = re.match(r"heroforge serve: (http://127\.0\.0\.1:\d+/)\?token=\.\.\.$", line.strip())
        assert url, line
        # the socket listens before the line is printed: a request waits, it is not refused
        headers = {"authorization": f"Bearer {token}"}
        response = httpx.get(url.group(1) + "api/jobs", headers=headers, timeout=60)
        assert [j["id"] for j in response.json()] == [1, 2]
        assert httpx.get(url.group(1) + "api/jobs", timeout=5).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
