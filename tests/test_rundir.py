"""The run folder's layout: checkpoint names, listing, markers, run.json and config.toml."""

import json
import subprocess
import sys

import pytest

from heroforge import rundir
from heroforge.config import load_config
from heroforge.errors import UserError


def test_checkpoint_names_carry_the_images_shown():
    assert rundir.checkpoint_name(32) == "ckpt-000000000032.safetensors"
    assert rundir.checkpoint_nimg("ckpt-000000000032.safetensors") == 32
    assert rundir.checkpoint_nimg(rundir.checkpoint_name(123_456_789)) == 123_456_789
    for other in ("ckpt-32.safetensors", "ckpt-000000000032.json", "xckpt-000000000032.safetensors",
                  "ckpt-000000000032.safetensors.tmp", ""):  # fmt: skip
        assert rundir.checkpoint_nimg(other) is None


def test_checkpoints_are_listed_newest_first(tmp_path):
    assert rundir.list_checkpoints(tmp_path / "missing") == []
    for nimg in (64, 1000, 32):
        (tmp_path / rundir.checkpoint_name(nimg)).write_bytes(b"")
    (tmp_path / "ckpt-000000000064.json").write_text("{}")  # a sidecar
    (tmp_path / ".ckpt-000000002000.safetensors.x.tmp").write_bytes(b"")  # a write under way
    names = [p.name for p in rundir.list_checkpoints(tmp_path)]
    assert names == [rundir.checkpoint_name(n) for n in (1000, 64, 32)]


def test_a_marker_names_a_bare_file_or_nothing(tmp_path):
    assert rundir.read_marker(tmp_path, rundir.LATEST) is None  # missing
    rundir.write_marker(tmp_path, rundir.BEST, "ckpt-000000000032.safetensors", "ab12")
    written = json.loads((tmp_path / rundir.BEST).read_text())
    assert written == {"file": "ckpt-000000000032.safetensors", "sha256": "ab12"}
    assert rundir.read_marker(tmp_path, rundir.BEST) == "ckpt-000000000032.safetensors"
    for text in ("{", "[]", '{"file": 3}', '{"file": "../x"}', '{"file": "a/b"}',
                 '{"file": ""}', '{"file": ".."}', '{"sha256": "x"}', "\udcff"):  # fmt: skip
        (tmp_path / rundir.LATEST).write_text(text, errors="surrogateescape")
        assert rundir.read_marker(tmp_path, rundir.LATEST) is None, text


def test_the_run_folder_is_the_newest_with_run_json(tmp_path):
    assert rundir.find_run_dir(tmp_path / "missing") is None
    assert rundir.find_run_dir(tmp_path) is None
    for name in ("00000-a", "00001-b", "00002-killed"):
        (tmp_path / name).mkdir()
    for name in ("00000-a", "00001-b"):
        (tmp_path / name / rundir.RUN_JSON).write_text("{}")
    assert rundir.find_run_dir(tmp_path) == tmp_path / "00001-b"


def test_run_json_and_config_round_trip_and_events_append(tmp_path):
    cfg = load_config("tiny-cpu")
    rundir.write_config(tmp_path, cfg)
    rundir.write_run_json(tmp_path, {"total_kimg": 1.5})
    assert rundir.append_run_event(tmp_path, "rollbacks", {"kimg": 1}) == [{"kimg": 1}]
    assert len(rundir.append_run_event(tmp_path, "rollbacks", {"kimg": 2})) == 2
    read_cfg, run = rundir.read_run(tmp_path)
    assert read_cfg == cfg
    assert run == {"total_kimg": 1.5, "rollbacks": [{"kimg": 1}, {"kimg": 2}]}


def test_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match=r"not a heroforge run folder \(config.toml missing\)"):
        rundir.read_run(tmp_path)
    rundir.write_config(tmp_path, load_config("tiny-cpu"))
    (tmp_path / rundir.RUN_JSON).write_text("{")
    with pytest.raises(UserError, match="cannot read the run folder"):
        rundir.read_run(tmp_path)


def test_the_layout_module_does_not_import_torch():
    code = "import sys, heroforge.rundir; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
