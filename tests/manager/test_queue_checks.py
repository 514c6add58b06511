"""What the queue refuses and says (issue 26 points 3, 6, 7): kimg that `train` refuses, data
that changed or went missing since submit, strict JSON, `queue retry`."""

import json
import math
import shutil
import sqlite3

import pytest

from helpers.files import archive_without_one_image
from heroforge.manager import open_queue


def _strict(text: str):
    def refuse(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _submit(cli, root, data, *overrides: str, kimg: str = "0.032") -> None:
    sets = [word for o in overrides for word in ("--set", o)]
    code, _, err = cli("queue", "submit", "--root", str(root), "--data", str(data), "--preset",
                       "tiny-cpu", "--kimg", kimg, *sets)  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize("kimg", ["1e309", "inf", "nan", "0"])
def test_submit_refuses_the_kimg_that_train_refuses(cli, tiny_archive, tmp_path, kimg):
    root = tmp_path / "root"
    code, _, err = cli("queue", "submit", "--root", str(root), "--data", str(tiny_archive),
                       "--preset", "tiny-cpu", "--kimg", kimg)  # fmt: skip
    assert code == 2
    assert err.startswith("heroforge: error: --kimg must be a positive number of kimg"), err
    assert err.count("\n") == 1
    code, _, train_err = cli("train", "--data", str(tiny_archive), "--kimg", kimg)
    assert (code, train_err) == (2, err)  # the same check, word for word
    (tmp_path / "job.toml").write_text(f'data = "{tiny_archive}"\nkimg = {kimg}\n')
    code, _, err = cli("queue", "submit", "--root", str(root), str(tmp_path / "job.toml"))
    assert code == 2
    assert f"kimg in {tmp_path / 'job.toml'} must be a positive number of kimg" in err
    assert not (root / "jobs").exists() or not any((root / "jobs").iterdir())


def test_status_and_show_are_strict_json_for_a_job_with_an_infinite_target(
    cli, tiny_archive, tmp_path
):
    root = tmp_path / "root"
    _submit(cli, root, tiny_archive)
    db = sqlite3.connect(root / "queue.sqlite3")  # as an older heroforge accepted it
    with db:
        db.execute("UPDATE jobs SET target_kimg = ?, status = ?", (math.inf, '{"eta_s": NaN}'))
    db.close()
    for command in (["status", "--json"], ["queue", "list", "--json"], ["queue", "show", "1"]):
        code, out, err = cli(*command, "--root", str(root))
        assert code == 0, err
        shown = _strict(out)
        job = shown[0] if isinstance(shown, list) else shown
        assert (job["target_kimg"], job["eta_s"]) == (None, None)
    assert _strict(cli("queue", "show", "1", "--root", str(root))[1])["events"][0]["kind"]


def test_a_dataset_changed_after_submit_is_refused_with_the_reason(cli, tiny_archive, tmp_path):
    root, data = tmp_path / "root", tmp_path / "heroes.zip"
    shutil.copy(tiny_archive, data)
    _submit(cli, root, data)
    archive_without_one_image(tiny_archive, data)  # overwritten before any supervisor started it
    code, _, err = cli("manager", "run", "--root", str(root), "--exit-when-idle")
    assert code == 0, err
    job = _strict(cli("queue", "show", "1", "--root", str(root))[1])
    assert job["state"] == "failed"
    assert f"refused: its data {data} changed since it was submitted" in job["reason"]
    assert "queue retry 1" in job["reason"]
    assert not (root / "jobs" / "0001" / "runs").exists()  # no trainer started
    code, _, err = cli("status", "--root", str(root))
    assert "changed since it was submitted" in " ".join(err.split())


def test_missing_data_past_job_wait_minutes_fails_and_retry_queues_it_again(
    cli, tiny_archive, tmp_path
):
    root, data = tmp_path / "root", tmp_path / "heroes.zip"
    shutil.copy(tiny_archive, data)
    _submit(cli, root, data, "job.wait_minutes=0")
    data.unlink()
    assert cli("manager", "run", "--root", str(root), "--exit-when-idle")[0] == 0
    job = open_queue(root).get(1)
    assert job.state == "failed"
    assert f"waiting for its data: its data {data} is missing; gave up after" in job.reason
    assert "job.wait_minutes" in job.reason
    code, _, err = cli("queue", "retry", "1", "--root", str(root))
    assert (code, err.strip()) == (0, "job 1: queued")
    job = open_queue(root).get(1)
    assert (job.state, job.reason, job.failures, job.finished) == ("queued", None, 0, None)
    assert open_queue(root).events(1)[-1]["kind"] == "retry requested"
    code, _, err = cli("queue", "retry", "1", "--root", str(root))
    assert code == 2
    assert err.strip() == "heroforge: error: job 1 is queued; only a failed job is retried"


def test_a_queue_file_of_version_1_is_upgraded_in_place(tiny_archive, tmp_path):
    from heroforge.manager import submit
    from heroforge.manager.spec import spec_from_options

    queue = open_queue(tmp_path)
    submit(queue, spec_from_options(tiny_archive, "tiny-cpu", 0.032, []))
    db = sqlite3.connect(queue.path)
    with db:  # what heroforge wrote before jobs could wait
        db.execute("ALTER TABLE jobs DROP COLUMN not_before")
        db.execute("ALTER TABLE jobs DROP COLUMN waiting_since")
        db.execute("PRAGMA user_version = 1")
    db.close()
    job = open_queue(tmp_path).get(1)
    assert (job.state, job.not_before, job.waiting_since) == ("queued", None, None)


def test_a_childs_threads_are_its_share_of_the_given_cores():
    from heroforge.manager.cpus import child_thread_env

    assert child_thread_env({}, 4, 2) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    assert child_thread_env({"OMP_NUM_THREADS": "8"}, 3, 1)["OMP_NUM_THREADS"] == "3"
    assert child_thread_env({"OMP_NUM_THREADS": "8"}, None, 1) == {}  # the user's choice stays
    assert child_thread_env({}, 1, 4)["OMP_NUM_THREADS"] == "1"  # never 0
