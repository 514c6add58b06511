import subprocess
import sys

import pytest

COMMANDS = [
    "synth",
    "prepare",
    "archive",
    "train",
    "import-official",
    "nets",
    "demo",
    "config",
    "version",
]


def test_help_lists_every_command(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize(
    "command",
    [
        ["synth"],
        ["prepare"],
        ["archive"],
        ["train"],
        ["import-official"],
        ["nets", "summary"],
        ["generate"],
        ["morph"],
        ["child"],
        ["mix"],
        ["demo"],
        ["config", "show"],
        ["config", "list"],
    ],
)
def test_every_command_has_help_with_examples(cli, command):
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert "Example" in out
    assert "heroforge " + command[0] in out


def test_console_script_runs_without_a_traceback_on_user_errors():
    result = subprocess.run(
        [sys.executable, "-m", "heroforge.cli", "config", "show", "no-such-preset"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("heroforge: error: unknown preset")
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error(cli):
    code, _, err = cli("trian")
    assert code == 2
    assert "No such command" in err


def test_ctrl_c_says_so_and_exits_130(cli, monkeypatch, tmp_path):
    """click turns KeyboardInterrupt into a silent exit 130; the user is told."""
    from heroforge.data import prepare

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare, "prepare", interrupted)
    code, _, err = cli("prepare", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 130
    assert err.startswith("heroforge: interrupted")


def test_ctrl_c_is_quiet_where_it_is_the_usual_way_to_stop(capsys):
    from heroforge.cli import _interrupted

    for argv, says in ((["serve", "--port", "0"], ""), (["queue", "logs", "1", "-f"], ""),
                       (["synth", "--out", "x"], "heroforge: interrupted\n")):  # fmt: skip
        assert _interrupted(argv) == 130
        assert capsys.readouterr().err == says


def test_long_steps_leave_a_progress_line_in_logs_now_and_then(cli, monkeypatch, tmp_path):
    """No bar outside a terminal (it cannot redraw there): plain lines, LOG_EVERY apart."""
    from heroforge import cli as cli_module

    with cli_module.progress_bar() as bar:  # a fresh bar: nothing is due before LOG_EVERY
        task = bar.add_task("quiet", total=3)
        bar.update(task, completed=1)
    monkeypatch.setattr(cli_module, "LOG_EVERY", 0.0)
    with cli_module.progress_bar() as bar:
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
