"""Progress output that reads well in a terminal and in a log file."""

from heroforge import console


def test_long_steps_leave_a_progress_line_in_logs_now_and_then(cli, monkeypatch, tmp_path):
    """No bar outside a terminal (it cannot redraw there): plain lines, LOG_EVERY apart."""
    with console.progress_bar() as bar:  # a fresh bar: nothing is due before LOG_EVERY
        task = bar.add_task("quiet", total=3)
        bar.update(task, completed=1)
    monkeypatch.setattr(console, "LOG_EVERY", 0.0)
    with console.progress_bar() as bar:
        task = bar.add_task("project", total=4)
        for done in range(1, 5):
            bar.update(task, completed=done)
        unknown = bar.add_task("morph", total=None)
        bar.update(unknown, completed=7)
        big = bar.add_task("archive", total=2_000_000)
        bar.update(big, completed=1_999_999)
    code, _, err = cli("synth", "--out", str(tmp_path / "s"), "--count", "3", "--workers", "1")
    lines = err.splitlines()
    assert code == 0
    assert lines[0] == "project: 1/4 (25%), about 0:00 left"
    assert lines[3].startswith("project: 4/4 (100%)")
    assert lines[4] == "morph: 7"
    assert lines[5].startswith("archive: 1999999/2000000 (99%), about 0:00 left")
    assert "synth: 3/3 (100%), about 0:00 left" in lines
