"""`heroforge serve`: the web page over a manager root."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.errors import UserError

SERVE_EPILOG = (
    "Examples:\n\n"
    "  heroforge serve                           http://127.0.0.1:8765 on this machine only\n\n"
    "  heroforge serve --prepared prepared       also review that prepare output\n\n"
    "  heroforge serve --runs runs               also list the runs of `heroforge train "
    "--outdir runs`\n\n"
    "  HEROFORGE_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe())') "
    "heroforge serve --host 0.0.0.0\n\n"
    "    reachable from other machines; open http://HOST:8765/?token=TOKEN"
)


def serve_command(
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            # no [brackets]: rich markup would swallow them
            help="Manager folder with the queue and jobs (default: $HEROFORGE_ROOT or "
            "~/.heroforge).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="HEROFORGE_TOKEN",
            help="Every request must carry it (header 'Authorization: Bearer T' or ?token=T). "
            "Prefer the environment variable: a command line is visible to other users.",
        ),
    ] = None,
    prepared: Annotated[
        list[Path] | None,
        typer.Option(help="A `heroforge prepare` output folder to review (repeatable)."),
    ] = None,
    runs: Annotated[
        list[Path] | None,
        typer.Option(
            help="Also list run folders that no queue started (`heroforge train`, SLURM): a run "
            "folder, or a folder holding run folders (repeatable). Read-only."
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="The explorer draws on the CPU in auto = fp32 (the official pictures) or bf16 "
            "(faster with AVX-512 BF16 or AMX; a few grey levels off)."
        ),
    ] = "auto",
) -> None:
    """The queue, live training curves, sample grids, a seed explorer and dataset review in a
    browser."""
    from heroforge.manager import root_folder
    from heroforge.serve.models import ModelCache
    from heroforge.serve.security import check_bind

    check_bind(host, token)  # before anything listens
    models = ModelCache(precision=precision)  # refuses a wrong --precision, before listening
    if not 0 <= port < 65536:
        raise UserError(f"--port {port} is not a port: 1 to 65535 (0: any free one)")
    import uvicorn

    from heroforge.serve.app import create_app

    app = create_app(root_folder(root), token, list(prepared or []), models, list(runs or []))
    sock = _listen(host, port)
    port = sock.getsockname()[1]  # the one chosen for --port 0
    shown = f"[{host}]" if ":" in host else host
    print(f"heroforge serve: http://{shown}:{port}/" + ("?token=..." if token else ""), flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by uvicorn so that a taken port is one
    line, not a log and exit code 1. It is made with proto=IPPROTO_TCP (create_server leaves
    0): asyncio sets TCP_NODELAY only on connections accepted from such a socket, and without
    it every kept-alive response waits ~40 ms for a delayed ACK (headers and body go in two
    writes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def register(app: typer.Typer) -> None:
    # a server runs until Ctrl-C: that is its usual end, not an interruption
    add_command(app, serve_command, "serve", epilog=SERVE_EPILOG, on_interrupt=None)
