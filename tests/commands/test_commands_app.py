"""The `heroforge` app: its commands, its help, and how it ends on errors and Ctrl-C."""

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


def test_help_keeps_its_order_of_commands():
    """`heroforge --help` lists them in this order: the commands in the order the modules
    register them, then the groups in theirs."""
    import click
    import typer

    from heroforge.commands import app

    group = typer.main.get_command(app)
    assert group.list_commands(click.Context(group)) == [
        "status", "synth", "prepare", "archive", "import-official", "generate", "morph",
        "child", "mix", "project", "export", "metrics", "serve", "train", "demo", "version",
        "config", "nets", "queue", "manager",
    ]  # fmt: skip


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
        [sys.executable, "-m", "heroforge", "config", "show", "no-such-preset"],
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


def test_importing_the_commands_does_not_import_torch():
    code = "import sys, heroforge.commands; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _ctrl_c(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_says_so_and_exits_130(cli, monkeypatch, tmp_path):
    """typer turns KeyboardInterrupt into a silent exit 130; the user is told."""
    from heroforge.data import synth

    monkeypatch.setattr(synth, "synthesize", _ctrl_c)
    code, _, err = cli("synth", "--out", str(tmp_path / "s"))
    assert code == 130
    assert err == "heroforge: interrupted\n"


def test_ctrl_c_in_prepare_says_nothing_is_lost(cli, monkeypatch, tmp_path):
    from heroforge.data import prepare

    monkeypatch.setattr(prepare, "prepare", _ctrl_c)
    code, _, err = cli("prepare", str(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 130
    assert err == (
        "heroforge: interrupted (every picture already analysed is kept: run the same "
        "command again to go on)\n"
    )


def test_ctrl_c_is_quiet_where_it_is_the_usual_way_to_stop(cli, monkeypatch, tmp_path):
    import heroforge.manager
    from heroforge.serve import security

    monkeypatch.setattr(security, "check_bind", _ctrl_c)  # serve's first step
    monkeypatch.setattr(heroforge.manager, "open_queue", _ctrl_c)  # queue logs' first step
    for args in (["serve", "--port", "0"], ["queue", "logs", "1", "-f"]):
        code, out, err = cli(*args, "--root", str(tmp_path))
        assert code == 130, args
        assert (out, err) == ("", ""), args


def test_ctrl_c_outside_a_command_says_so(cli, monkeypatch):
    """Ctrl-C while typer parses the arguments, before any command runs."""
    import typer

    import heroforge.commands

    unwrapped = typer.Typer()  # a command added without add_command: typer's own handling

    @unwrapped.command()
    def stopped() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(heroforge.commands, "app", unwrapped)
    code, _, err = cli()
    assert code == 130
    assert err == "heroforge: interrupted\n"


def test_operational_errors_are_one_line_and_exit_74(cli, monkeypatch, tmp_path):
    import heroforge.manager
    from heroforge.errors import OperationalError

    def locked(*_args, **_kwargs):
        raise OperationalError("the queue database is locked")

    monkeypatch.setattr(heroforge.manager, "open_queue", locked)
    code, out, err = cli("queue", "show", "1", "--root", str(tmp_path))
    assert code == 74
    assert (out, err) == ("", "heroforge: error: the queue database is locked\n")
