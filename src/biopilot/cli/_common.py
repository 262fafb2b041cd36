"""Shared CLI plumbing: JSON or table output, clear errors, progress bars."""

from __future__ import annotations

import getpass
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(o: Any) -> Any:
    """Replace NaN/inf by None so the JSON is valid everywhere."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (NaN becomes null)."""
    text = json.dumps(_clean(json.loads(json.dumps(obj, default=_default))), indent=2)
    typer.echo(text)


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    """Print a list of dicts as a rich table."""
    cols = columns or (list(rows[0].keys()) if rows else [])
    table = Table(title=title)
    for i, c in enumerate(cols):
        # identifiers are never cut; on a narrow terminal other values fold onto a second
        # line rather than lose their end ("156,…" would read as a number)
        table.add_column(c, no_wrap=i == 0 or c in _KEY_COLUMNS, overflow="fold")
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in cols))
    console.print(table)


_KEY_COLUMNS = frozenset({"id", "batch", "code", "unit"})


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "-"
    return str(v)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


@contextmanager
def progress(enabled: bool = True) -> Iterator[Progress]:
    """A rich progress bar on stderr; disabled for --json output or when asked."""
    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not enabled,
        transient=False,
    )
    with bar:
        yield bar


def check_device(device: str) -> None:
    """Exit with a clear message when CUDA is asked for and PyTorch has none."""
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            fail("--device cuda: PyTorch sees no CUDA device here (use --device cpu)")


def current_user() -> str:
    """The logged-in user's name, for the audit trail ("unknown" where the OS has none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def resolve_batch(ref: str) -> int | str:
    """A batch reference from the command line: an integer id, or else a batch code."""
    return int(ref) if ref.isdigit() else ref


def open_store(db: str | Path, *, create: bool = False) -> Any:
    """Open the historian at ``db`` (a path or URL); refuse a missing file unless ``create``."""
    from biopilot.store import Historian

    text = str(db)
    if not create and "://" not in text and not Path(text).is_file():
        fail(f"no historian at {text}: run 'biopilot simulate --db {text}' first, or pass --db")
    return Historian(text)
