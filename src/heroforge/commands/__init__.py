"""The `heroforge` command. Thin on purpose: it parses arguments and calls library functions.

One module per command group; each defines its command functions (plain functions that Python
code may call too) and a `register(app)` that adds them with `base.add_command`, which also
says what Ctrl-C prints while the command runs. Expected failures (HeroforgeError) become one
line on stderr and the error's exit code, never a traceback. Heavy modules are imported inside
the commands so that `heroforge --help` stays instant. Nothing outside this package imports it.
"""

from __future__ import annotations

import sys
import traceback

import typer

from heroforge.commands import (
    config,
    data,
    generate,
    manager,
    misc,
    nets,
    project,
    serve,
    status,
    train,
)
from heroforge.commands import export as exporting
from heroforge.commands.base import EXIT_INTERRUPTED, INTERRUPTED, Interrupted
from heroforge.errors import HeroforgeError

app = typer.Typer(
    name="heroforge",
    help="Turn a folder of stylised character pictures into a StyleGAN2-ADA model that "
    "invents new characters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
# `heroforge --help` lists the commands in the order they are registered, then the groups
# (config, nets, queue, manager) in theirs: this order gives both.
_MODULES = (status, config, data, nets, generate, project, exporting, serve, train, misc, manager)
for module in _MODULES:
    module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; argv defaults to sys.argv[1:]."""
    try:
        _run(argv)
    except SystemExit as done:
        _leave(done.code)
    except BaseException:
        if not _in_a_process_group():
            raise
        traceback.print_exc()  # an unexpected error of one training process: its report
        _leave(1)


def _run(argv: list[str] | None) -> None:
    if argv is None and sys.argv[1:2] == ["train"]:
        from heroforge.runtime.allocator import restart_with_training_allocator
        from heroforge.runtime.signals import hold_stops

        restart_with_training_allocator()  # returns only when nothing needed to change
        hold_stops()  # a stop signal from here on ends with a checkpoint, never a bare exit
    try:
        app(args=argv, prog_name="heroforge")
    except HeroforgeError as err:
        print(f"heroforge: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except Interrupted as stop:  # Ctrl-C while a command ran: it says what to print
        if stop.message:
            print(stop.message, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:  # Ctrl-C outside any command (while starting up)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as done:
        # typer turns a Ctrl-C outside the commands (parsing the arguments) into a silent 130
        if done.code == EXIT_INTERRUPTED:
            print(INTERRUPTED, file=sys.stderr)
        sys.exit(done.code)


def _in_a_process_group() -> bool:
    """Whether this process trained as one of several (only `train` imports the module)."""
    dist = sys.modules.get("heroforge.runtime.dist")
    return dist is not None and dist.joined_a_group()


def _leave(code: int | str | None) -> None:
    """Exit with `code`; a process of a process group leaves without the interpreter's
    teardown (runtime.dist.leave_process says why)."""
    if not _in_a_process_group():
        sys.exit(code)
    from heroforge.runtime.dist import leave_process

    if isinstance(code, str):
        print(code, file=sys.stderr)
    leave_process(1 if isinstance(code, str) else code or 0)
