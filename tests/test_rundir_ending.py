"""The ending record: how the last training session ended, read without trusting the file."""

import json

import pytest

from heroforge import rundir


def test_an_ending_round_trips_in_one_line(tmp_path):
    written = rundir.write_ending(tmp_path, "crashed", 96, "ckpt-000000000064.safetensors",
                                  "RuntimeError: boom\n  a second line\n")  # fmt: skip
    assert written.error == "RuntimeError: boom"
    assert rundir.read_ending(tmp_path) == written
    raw = json.loads((tmp_path / rundir.ENDING).read_text())
    assert set(raw) == {"how", "nimg", "checkpoint", "at", "error"}
    assert written.describe() == "crashed at 0.096 kimg: RuntimeError: boom"
    stopped = rundir.write_ending(tmp_path, "stopped", 64, "ckpt-000000000064.safetensors")
    assert rundir.read_ending(tmp_path) == stopped
    assert stopped.describe() == "stopped at 0.064 kimg (ckpt-000000000064.safetensors)"


def test_clearing_leaves_no_record(tmp_path):
    rundir.clear_ending(tmp_path)  # none yet: nothing to do
    rundir.write_ending(tmp_path, "finished", 32, None)
    rundir.clear_ending(tmp_path)
    assert rundir.read_ending(tmp_path) is None
    assert rundir.read_ending(None) is None


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '"stopped"', '{"how": "stopped"}',
     '{"how": "paused", "nimg": 1, "checkpoint": null, "at": "", "error": null}',
     '{"how": "stopped", "nimg": "1", "checkpoint": null, "at": "", "error": null}',
     '{"how": "stopped", "nimg": 1, "checkpoint": null, "at": "", "error": null, "x": 1}'],
)  # fmt: skip
def test_a_torn_or_strange_record_is_no_record(tmp_path, text):
    (tmp_path / rundir.ENDING).write_text(text)
    assert rundir.read_ending(tmp_path) is None


def test_only_the_three_endings_are_written(tmp_path):
    with pytest.raises(ValueError, match="not 'paused'"):
        rundir.write_ending(tmp_path, "paused", 0, None)
