"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (arguments, config, files); never a bug in heroforge."""


class ConfigError(UserError):
    """A configuration value is unknown, of the wrong type, or impossible."""


# Exit code of `heroforge train` and `heroforge manager run` stopped by SIGTERM/SIGINT after the
# work was checkpointed: starting them again goes on (EX_TEMPFAIL in sysexits.h).
EXIT_RESUMABLE = 75
