"""CLI: verify and read the GMP audit trail, sign checkpoints, bootstrap and list users."""

from __future__ import annotations

from pathlib import Path

import typer

from biopilot.cli._common import (
    JSON_OPTION,
    console,
    err_console,
    fail,
    open_store,
    print_json,
    print_table,
)
from biopilot.store.audit import AuditTrail
from biopilot.store.checkpoints import CheckpointStore, default_folder
from biopilot.store.permissions import AuthenticationError, PermissionDenied, Role
from biopilot.store.users import UserStore

app = typer.Typer(help="GMP audit trail and users.", no_args_is_help=True)
users_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
app.add_typer(users_app, name="users")

DB_OPTION = typer.Option(Path("line.db"), "--db", help="Historian (SQLite file or URL).")
CHECKPOINTS_OPTION = typer.Option(
    None, "--checkpoints", help="Checkpoint folder (default: <db>.checkpoints beside the db)."
)


@app.command("verify")
def verify(
    db: Path = DB_OPTION,
    checkpoints: Path | None = CHECKPOINTS_OPTION,
    public_key: Path | None = typer.Option(
        None, "--public-key", help="Trusted Ed25519 public key (PEM) kept apart from the folder."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    """Check the whole audit chain offline; name the first broken entry (exit code 1)."""
    folder = checkpoints or default_folder(db)
    with open_store(db) as h:
        trail = AuditTrail(h)
        try:
            signed = CheckpointStore(folder).read(public_key)
        except (OSError, ValueError) as err:
            fail(f"cannot read the checkpoints in {folder}: {err}")
        report = trail.verify(signed)
    if not signed:
        err_console.print(
            f"[yellow]warning:[/] no checkpoints in {folder}: a truncated tail or a rewritten "
            "chain cannot be detected without them"
        )
    first = report.first_broken
    if json_out:
        print_json(report.as_dict() | {"checkpoints": str(folder)})
    elif first is None:
        console.print(
            f"audit trail intact: {report.n_entries} entries, head {report.head_seq} "
            f"({report.head_hash[:16]}…), {report.n_checkpoints} checkpoint(s) verified"
        )
    else:
        console.print(f"[bold red]audit trail BROKEN[/] at entry {first.seq}: {first.kind}")
        console.print(first.message, highlight=False)
        if len(report.breaks) > 1:
            console.print(f"({len(report.breaks) - 1} more break(s); --json lists them)")
    if first is not None:
        raise typer.Exit(1)


@app.command("log")
def log(
    db: Path = DB_OPTION,
    start: int = typer.Option(1, "--from", help="First sequence number to show."),
    limit: int | None = typer.Option(None, "--limit", help="Show at most this many entries."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Show the audit trail: who, when (UTC), what, old and new value, and why."""
    with open_store(db) as h:
        try:
            entries = AuditTrail(h).entries(start, limit)
        except (ValueError, TypeError, OverflowError) as err:
            fail(f"the audit trail cannot be read ({err}); run 'biopilot audit verify'")
    if json_out:
        print_json([e.as_dict() for e in entries])
        return
    rows = [
        {"seq": e.seq, "time (UTC)": e.time_utc.strftime("%Y-%m-%d %H:%M:%S"), "who": e.actor}
        | {"action": e.action, "object": f"{e.object_type}:{e.object_id}", "reason": e.reason}
        | {"old": _short(e.old_value), "new": _short(e.new_value)}
        for e in entries
    ]
    if not rows:
        console.print(f"The audit trail of {db} is empty.")
        return
    print_table(f"Audit trail of {db}", rows)


@app.command("checkpoint")
def checkpoint(
    db: Path = DB_OPTION,
    checkpoints: Path | None = CHECKPOINTS_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Sign the chain's head (Ed25519) into the checkpoint folder, apart from the database."""
    folder = checkpoints or default_folder(db)
    with open_store(db) as h:
        try:
            cp = CheckpointStore(folder).checkpoint(AuditTrail(h))
        except (OSError, ValueError) as err:
            fail(str(err))
    if json_out:
        print_json({"seq": cp.seq, "hash": cp.hash, "time_utc": cp.time_utc, "folder": folder})
    else:
        console.print(f"checkpoint of entry {cp.seq} ({cp.hash[:16]}…) signed into {folder}")


@users_app.command("add")
def add_user(
    username: str = typer.Argument(..., help="Login name."),
    full_name: str = typer.Option(..., "--name", help="Printed name (shown on signatures)."),
    role: Role = typer.Option(..., "--role", help="Role of the user."),
    reason: str = typer.Option(..., "--reason", help="Why the account is created (audited)."),
    admin: str | None = typer.Option(
        None, "--admin", help="Administrator creating the user (omit for the first one)."
    ),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="BIOPILOT_NEW_PASSWORD",
        help="Password of the new user (prompted).",
    ),
    db: Path = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Create a user; the very first user is an administrator created without --admin."""
    with open_store(db, create=admin is None) as h:
        users = UserStore(h)
        try:
            by = None
            if admin is not None:
                secret = typer.prompt(f"Password of {admin}", hide_input=True)
                by = users.authenticate(admin, secret)
            user = users.add_user(username, full_name, role, password, by=by, reason=reason)
        except (AuthenticationError, PermissionDenied, ValueError) as err:
            fail(str(err))
    if json_out:
        print_json(_user_row(user))
    else:
        console.print(f"user {user.username!r} ({user.full_name}, {user.role}) created")


@users_app.command("list")
def list_users(db: Path = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """List the users: name, printed name, role, active, locked."""
    with open_store(db) as h:
        rows = [_user_row(u) for u in UserStore(h).list_users()]
    if json_out:
        print_json(rows)
    elif rows:
        print_table(f"Users of {db}", rows)
    else:
        console.print(f"No users in {db}: create the first administrator with 'users add'.")


def _user_row(user: object) -> dict[str, object]:
    names = ("username", "full_name", "role", "active", "locked", "failed_attempts")
    return {k: str(v) if k == "role" else v for k in names for v in [getattr(user, k)]}


def _short(value: object, width: int = 40) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"
