"""Errors that are the user's to fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the user's input (arguments, config, files); never a bug in heroforge."""


class ConfigError(UserError):
    """A configuration value is unknown, of the wrong type, or impossible."""
