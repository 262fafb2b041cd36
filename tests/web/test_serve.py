"""``biopilot serve``: builds the app over the historian, creates and prints the demo users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from biopilot.cli import serve
from biopilot.store import Historian
from biopilot.store.users import UserStore
from biopilot.web.demo import DEMO_USERS


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, dict[str, Any]]:
    """A Typer app with ``serve`` registered; uvicorn.run captured instead of serving."""
    import uvicorn

    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.update(app=app, **kw))
    app = typer.Typer()
    serve.register(app)

    @app.command()
    def other() -> None:  # a second command keeps "serve" a sub-command
        """Unused."""

    return app, ran


def test_serve_creates_demo_users_and_listens_on_loopback(
    cli: tuple[typer.Typer, dict[str, Any]], tmp_path: Path
) -> None:
    app, ran = cli
    db = tmp_path / "line.db"
    Historian(db).close()
    result = CliRunner().invoke(app, ["serve", "--db", str(db), "--port", "8123", "--demo-users"])
    assert result.exit_code == 0, result.output
    assert (ran["host"], ran["port"]) == ("127.0.0.1", 8123)
    for demo in DEMO_USERS:
        assert demo.username in result.output and demo.password in result.output
    with Historian(db) as h:
        names = {u.username: u.role for u in UserStore(h).list_users()}
    assert names == {d.username: d.role for d in DEMO_USERS}


def test_serve_refuses_a_missing_historian(
    cli: tuple[typer.Typer, dict[str, Any]], tmp_path: Path
) -> None:
    app, ran = cli
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "none.db")])
    assert result.exit_code != 0 and "no historian" in result.output
    assert ran == {}
