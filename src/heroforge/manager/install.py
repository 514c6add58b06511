"""`heroforge manager install`: a systemd unit that keeps the supervisor alive across reboots.

Stopping: systemd sends SIGTERM to the supervisor only (KillMode=mixed); the supervisor asks the
trainer to checkpoint and waits for it. TimeoutStopSec leaves room for that before systemd
sends SIGKILL to everything left. Restart=always brings the supervisor back after a crash,
and at boot it resumes the interrupted job first.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from heroforge.errors import UserError, write_failure
from heroforge.fileio import atomic_write_text

UNIT_NAME = "heroforge-manager.service"
STOP_TIMEOUT_S = 300  # the supervisor's default --stop-timeout, plus margin below


def unit_text(root: Path, gpus: int, system: bool) -> str:
    heroforge = shutil.which("heroforge") or f"{sys.executable} -m heroforge"
    command = f"{heroforge} manager run --root {shlex.quote(str(root))} --gpus {gpus}"
    user = f"User={os.environ.get('USER', 'root')}\n" if system else ""
    target = "multi-user.target" if system else "default.target"
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return (
        "[Unit]\n"
        "Description=heroforge training supervisor (queue: heroforge status)\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"{user}"
        f"ExecStart={command}\n"
        f"Environment=PATH={path}\n"
        "Environment=PYTHONUNBUFFERED=1\n"
        "Restart=always\n"
        "RestartSec=10\n"
        "KillMode=mixed\n"
        "KillSignal=SIGTERM\n"
        f"TimeoutStopSec={STOP_TIMEOUT_S + 60}\n"
        "SuccessExitStatus=75\n\n"
        "[Install]\n"
        f"WantedBy={target}\n"
    )


def install_unit(
    root: Path, gpus: int, system: bool, out: Path | None = None
) -> tuple[Path, list[str]]:
    """Write the unit; returns its path and the commands that enable it."""
    if gpus < 1:
        raise UserError(f"--gpus must be >= 1, got {gpus}")
    if out is not None:
        path = out
    elif system:
        path = Path("/etc/systemd/system") / UNIT_NAME
    else:
        path = Path.home() / ".config" / "systemd" / "user" / UNIT_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, unit_text(root.resolve(), gpus, system))
    except OSError as err:
        hint = " (a system unit needs root: sudo)" if system else ""
        raise write_failure(f"cannot write {path}{hint}", err) from None
    ctl = "sudo systemctl" if system else "systemctl --user"
    if out is not None:
        folder = "/etc/systemd/system" if system else "~/.config/systemd/user"
        return path, [f"copy it to {folder}/{UNIT_NAME}, then: {ctl} enable --now {UNIT_NAME}"]
    hints = [
        f"{ctl} daemon-reload",
        f"{ctl} enable --now {UNIT_NAME}",
        f"journalctl {'' if system else '--user '}-u {UNIT_NAME} -f     (supervisor log)",
    ]
    if not system:
        hints.append(f"loginctl enable-linger {os.environ.get('USER', '$USER')}   (start at boot)")
    return path, hints
