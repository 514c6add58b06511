"""How a command joins the CLI: `add_command` registers a function under a name, with its
epilog and what Ctrl-C prints while it runs.

The function itself stays a plain function that Python code and tests may call directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C
INTERRUPTED = "heroforge: interrupted"


class Interrupted(Exception):  # noqa: N818 (not an error: the user stopped the command)
    """Ctrl-C stopped a command; `message` is what main() prints (None: nothing)."""

    def __init__(self, message: str | None) -> None:
        super().__init__(message)
        self.message = message


def add_command(
    group: typer.Typer,
    function: Callable[..., None],
    name: str,
    *,
    epilog: str | None = None,
    on_interrupt: str | None = INTERRUPTED,
) -> None:
    """Register `function` as the command `name` of `group` (the app or a sub-app such as
    `queue`). on_interrupt is what Ctrl-C prints while it runs; None for commands that one
    usually ends with Ctrl-C (a server, following a log), where a message would read as a
    failure."""

    @functools.wraps(function)  # typer reads the options and the help from the original
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            function(*args, **kwargs)
        except KeyboardInterrupt:
            # raised past typer, which would turn a KeyboardInterrupt into a silent exit 130
            raise Interrupted(on_interrupt) from None

    group.command(name, epilog=epilog)(run)
