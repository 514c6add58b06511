"""The errors heroforge expects and explains: the CLI prints each as one line, never a traceback,
and exits with the class's code. Anything else that escapes is a bug (exit code 1)."""

import errno


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


class SaveError(OperationalError):
    """Training's work could not be saved (a checkpoint or another run file): the run stops at
    once, the last good checkpoint untouched, rather than train on with nowhere to keep the
    result. Free space or fix the folder, then resume (EX_CANTCREAT in sysexits.h)."""

    exit_code = 73


# Exit code of `heroforge train` and `heroforge manager run` stopped by SIGTERM/SIGINT after the
# work was checkpointed: starting them again goes on (EX_TEMPFAIL in sysexits.h).
EXIT_RESUMABLE = 75


# What the machine does wrong, not the path the user gave: a full disk or quota, an I/O error,
# a file system gone read-only, too many open files, a busy or vanished network file.
MACHINE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EROFS,
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.ESTALE,
        errno.ETIMEDOUT,
        errno.EAGAIN,
        errno.EBUSY,
    }
)


def write_failure(what: str, err: OSError) -> HeroforgeError:
    """The one-line error for an OSError met while writing `what` ("cannot write X: reason"):
    an OperationalError when the machine failed (MACHINE_ERRNOS), else a UserError (a path
    under a file, a folder the user may not write, a name too long: the path is to change)."""
    kind = OperationalError if err.errno in MACHINE_ERRNOS else UserError
    return kind(f"{what}: {err.strerror or err}")


# A folder or file the run may not write (permissions, chattr +i, a read-only mount).
NOT_WRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def save_failure(what: str, err: OSError) -> SaveError:
    """The one-line error for an OSError met while writing training's work (`what`: "cannot
    write PATH"). Always a SaveError, whatever the cause: the run folder is heroforge's own,
    and a folder that became unwritable loses the work just as a full disk does, so the run
    stops and a supervisor retries later rather than treat it as the user's input (exit 2)."""
    hint = (
        " (not writable: the work cannot be saved there)"
        if err.errno in NOT_WRITABLE_ERRNOS
        else ""
    )
    return SaveError(f"{what}: {err.strerror or err}{hint}")
