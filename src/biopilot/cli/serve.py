"""CLI: ``biopilot serve`` runs the web API and the browser cockpit over a historian."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from biopilot.cli._common import console, err_console, fail, open_store, print_table

__all__ = ["register", "serve"]


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the ``biopilot`` app."""
    app.command("serve")(serve)


def serve(
    db: Path = typer.Option(Path("line.db"), "--db", help="Historian (SQLite file or URL)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    demo_users: bool = typer.Option(
        False, "--demo-users", help="Create one demo user per role and print their logins."
    ),
) -> None:
    """Serve the REST API (OpenAPI at /docs) and the cockpit at http://HOST:PORT/."""
    import uvicorn

    from biopilot.store.users import UserStore
    from biopilot.web.app import create_app
    from biopilot.web.demo import DEMO_USERS, ensure_demo_users

    if not _loopback(host):
        err_console.print(f"[yellow]warning:[/] listening on {host}, beyond this machine")
    open_store(db).close()  # refuses a missing file with a clear message
    app = create_app(db)
    if demo_users:
        try:
            ensure_demo_users(UserStore(app.state.ctx.historian, app.state.ctx.audit))
        except Exception as err:  # e.g. a store with users but no demo admin
            fail(f"cannot create the demo users: {err}")
        rows = [{"user": d.username, "password": d.password, "role": d.role.value,
                 "name": d.full_name} for d in DEMO_USERS]
        print_table("demo users (never use on a real line)", rows)
    console.print(f"cockpit: http://{host}:{port}/   API: http://{host}:{port}/docs")
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=2)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
