"""`heroforge queue | status | manager install` from the command line."""

import errno
import json
import time

import pytest

from heroforge.errors import OperationalError, UserError
from heroforge.manager import open_queue
from heroforge.manager.install import install_unit


def test_submit_list_show_and_steer_from_the_cli(cli, tiny_archive, tmp_path):
    root = str(tmp_path / "root")
    for listing in (["queue", "list"], ["status"]):  # a mistyped root is named, not made
        code, _, err = cli(*listing, "--root", root)
        assert code == 0
        assert f"no queue at {tmp_path / 'root'} yet" in err
        code, out, _ = cli(*listing, "--root", root, "--json")
        assert code == 0
        assert json.loads(out) == []
    code, _, err = cli("queue", "show", "1", "--root", root)
    assert code == 2
    assert "no queue at" in err
    assert "check --root" in err
    assert not (tmp_path / "root").exists()
    submit = ["queue", "submit", "--root", root, "--data", str(tiny_archive), "--preset",
              "tiny-cpu", "--kimg", "0.5", "--set", "job.priority=2"]  # fmt: skip
    code, _, err = cli(*submit)
    assert code == 0, err
    assert "queued job 1" in err, err
    code, _, err = cli("queue", "list", "--active", "--root", root)
    assert code == 0
    assert "tiny" in err
    code, _, err = cli(*submit)
    assert code == 2
    assert err.startswith("heroforge: error: job 1 (queued) already trains")
    assert err.count("\n") == 1
    code, out, _ = cli("queue", "show", "1", "--root", root)
    shown = json.loads(out)
    assert (shown["state"], shown["priority"], shown["target_kimg"]) == ("queued", 2, 0.5)
    assert cli("queue", "pause", "1", "--root", root)[2].strip() == "job 1: paused"
    assert cli("queue", "resume", "1", "--root", root)[2].strip() == "job 1: queued"
    assert cli("queue", "priority", "1", "7", "--root", root)[2].strip() == "job 1: priority 7"
    assert cli("queue", "cancel", "1", "--root", root)[2].strip() == "job 1: cancelled"
    code, _, err = cli("queue", "cancel", "1", "--root", root)
    assert code == 2
    assert "already cancelled" in err
    code, _, err = cli("queue", "show", "5", "--root", root)
    assert code == 2
    assert err.strip() == "heroforge: error: there is no job 5"


def test_bad_submissions_are_one_line_errors(cli, tmp_path):
    root = str(tmp_path / "root")
    (tmp_path / "job.toml").write_text('data = "nowhere.zip"\n')
    for args in (
        ["queue", "submit", str(tmp_path / "job.toml")],
        ["queue", "submit", str(tmp_path / "missing.toml")],
        ["queue", "submit"],
        ["queue", "submit", "--data", str(tmp_path), "--preset", "tiny-cpu", "--kimg", "-1"],
        ["queue", "submit", "--data", str(tmp_path / "x.zip"), "--set", "train.batch=0"],
    ):
        code, _, err = cli(*args, "--root", root)
        assert code == 2, err
        assert err.startswith("heroforge: error: "), err
        assert err.count("\n") == 1, err
    assert open_queue(tmp_path / "root").jobs() == []


def test_status_shows_progress_and_a_silent_supervisor(cli, tiny_archive, tmp_path):
    root = tmp_path / "root"
    cli("queue", "submit", "--root", str(root), "--data", str(tiny_archive), "--preset",
        "tiny-cpu", "--kimg", "2")  # fmt: skip
    queue = open_queue(root)
    queue.claim("elsewhere:boot:1", 0.2, 1)
    status = {"sec_per_kimg": 6.5, "eta_s": 6.5, "lost_s": 12.0, "checkpoint_kimg": 0.5,
              "checkpoint_age_s": 30, "fid": 88.1, "fid_kimg": 0.5,
              "updated": time.time()}  # fmt: skip
    queue.heartbeat(1, "elsewhere:boot:1", 0.2, kimg=1.0, restarts=2, status=json.dumps(status))
    code, out, _ = cli("status", "--root", str(root), "--json")
    (job,) = json.loads(out)
    assert (job["state"], job["kimg"], job["restarts"], job["fid"]) == ("running", 1.0, 2, 88.1)
    time.sleep(0.3)
    code, _, err = cli("status", "--root", str(root))
    assert code == 0
    for expected in ("50.0%", "kimg 1.000 / 2", "ETA", "restarts 2", "interruptions, redone "
                     "work) 0m12s", "latest FID 88.10", "supervisor silent"):  # fmt: skip
        assert expected in err, err


def test_manager_install_writes_a_unit_that_restarts_and_checkpoints(cli, tmp_path):
    unit = tmp_path / "heroforge-manager.service"
    code, _, err = cli("manager", "install", "--root", str(tmp_path / "r"), "--gpus", "4",
                       "--out", str(unit))  # fmt: skip
    assert code == 0
    assert "copy it to ~/.config/systemd/user/" in err
    assert "enable --now" in err
    text = unit.read_text()
    for expected in ("Restart=always", "KillMode=mixed", "KillSignal=SIGTERM", "--gpus 4",
                     f"--root {tmp_path / 'r'}", "TimeoutStopSec=360"):  # fmt: skip
        assert expected in text


def test_manager_install_refuses_a_unit_that_could_never_start(cli, tmp_path):
    unit = tmp_path / "u.service"
    code, _, err = cli("manager", "install", "--gpus", "0", "--out", str(unit))
    assert code == 2
    assert "--gpus must be >= 1" in err
    assert not unit.exists()


def test_manager_install_under_a_file_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("in the way")
    unit = tmp_path / "file" / "u.service"
    with pytest.raises(UserError, match=f"cannot write {unit}: ") as err:
        install_unit(tmp_path / "r", gpus=1, system=False, out=unit)
    assert "\n" not in str(err.value)


def test_manager_install_on_a_full_disk_is_an_operational_failure(tmp_path, monkeypatch):
    def no_space(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("heroforge.fileio.os.replace", no_space)
    unit = tmp_path / "u.service"
    with pytest.raises(OperationalError, match=f"cannot write {unit}: No space left"):
        install_unit(tmp_path / "r", gpus=1, system=False, out=unit)
