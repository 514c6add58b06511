"""Reading what a command run through Typer's CliRunner left behind."""

from __future__ import annotations

from typer.testing import Result

from heroforge.errors import UserError


def user_error(result: Result) -> str:
    """The UserError a command raised (heroforge's main prints it as one line, exit 2)."""
    assert isinstance(result.exception, UserError), result.output
    assert "\n" not in str(result.exception)
    return str(result.exception)
