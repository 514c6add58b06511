"""The errors heroforge expects and explains: the CLI prints each as one line, never a traceback,
and exits with the class's code. Anything else that escapes is a bug (exit code 1)."""


class HeroforgeError(Exception):
    """An expected failure, explained in one line; never a bug in heroforge."""

    exit_code = 1


class UserError(HeroforgeError):
    """A mistake in the user's input (arguments, config, files): fix it and run again."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration value is unknown, of the wrong type, or impossible."""


class OperationalError(HeroforgeError):
    """The machine or a service failed, not the input: a full disk, a database that is locked
    or damaged, a job lease taken over by another supervisor. Nothing was lost; the same
    command may succeed later (EX_IOERR in sysexits.h)."""

    exit_code = 74


# Exit code of `heroforge train` and `heroforge manager run` stopped by SIGTERM/SIGINT after the
# work was checkpointed: starting them again goes on (EX_TEMPFAIL in sysexits.h).
EXIT_RESUMABLE = 75
