"""CLI: Connect to a line over OPC UA and record it into the historian."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress
from biopilot.config import ConfigError

app = typer.Typer(
    help="Connect to a line over OPC UA and record it into the historian.", no_args_is_help=True
)

_SECURITY_HELP = "none, or sign-encrypt (Basic256Sha256, certificate + --user)."


@app.command()
def connect(
    url: str = typer.Argument(..., help="Server URL, opc.tcp://HOST:PORT."),
    map_path: Path = typer.Option(..., "--map", help="Tag map (YAML)."),
    db: str = typer.Option("line.db", "--db", help="Historian: SQLite file or SQLAlchemy URL."),
    batch: str = typer.Option(
        "", "--batch", help="Batch code (per unit <CODE>-<unit>); default LINE-<UTC time>."
    ),
    product: str = typer.Option("unassigned", "--product", help="Product of new batches."),
    security: str = typer.Option("none", "--security", help=_SECURITY_HELP),
    user: str = typer.Option("", "--user", help="NAME:PASSWORD to log in with."),
    cert_dir: Path = typer.Option(
        Path("pki"), "--cert-dir", help="Client certificate (a self-signed one is made if absent)."
    ),
    duration: float = typer.Option(
        0.0, "--duration", min=0.0, help="Stop after this many wall seconds (0: Ctrl-C)."
    ),
    backfill_all: bool = typer.Option(
        True, "--backfill-all/--from-now", help="Read back the server's whole history first."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Subscribe to the mapped nodes and write every sample, with its quality, into --db.

    Reconnects with exponential backoff and backfills any gap with HistoryRead, so a server
    restart or a network cut loses nothing; running it again on the same --db and --batch
    resumes after the last stored sample of each tag (nothing is stored twice). An unknown
    node in the map, a refused login or a security mismatch stop it with a clear error.
    """
    from biopilot.line import LineClient, LineConfigError
    from biopilot.line.tagmap import load_tagmap
    from biopilot.store import Historian
    from biopilot.store.line_ingest import HistorianSink, TagInfo

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    try:
        tagmap = load_tagmap(map_path)
        client_security = _client_security(security, user, cert_dir)
        historian = Historian(db)
        code = batch or time.strftime("LINE-%Y%m%dT%H%M%SZ", time.gmtime())
        infos = [TagInfo(t.unit, t.tag, t.units, t.kind == "spectrum") for t in tagmap.tags]
        sink = HistorianSink(
            historian, tagmap.site, tagmap.area, infos, batch_code=code, product=product
        )
        client = LineClient(
            url,
            tagmap,
            sink,
            security=client_security,
            since=sink.last_times(),
            backfill_all=backfill_all,
        )
        sink.axes = client.axes  # filled at connection
    except (ConfigError, ValueError, OSError) as err:
        fail(str(err))
    t0 = time.monotonic()
    try:
        asyncio.run(_record(client, sink, duration or None, quiet=as_json))
    except KeyboardInterrupt:
        pass
    except LineConfigError as err:
        fail(str(err))
    finally:
        historian.close()
    summary = _summary(client, sink, time.monotonic() - t0)
    if as_json:
        print_json(summary)
    else:
        print_table(f"line {url} -> {db}", [summary])


@app.command()
def browse(
    url: str = typer.Argument(..., help="Server URL, opc.tcp://HOST:PORT."),
    security: str = typer.Option("none", "--security", help=_SECURITY_HELP),
    user: str = typer.Option("", "--user", help="NAME:PASSWORD to log in with."),
    cert_dir: Path = typer.Option(Path("pki"), "--cert-dir", help="Client certificate."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the variables of a server (NodeId, browse path, engineering units) for a tag map."""
    from biopilot.line.opcua_io import browse_variables

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    try:
        sec = _client_security(security, user, cert_dir)
        rows = asyncio.run(browse_variables(url, sec))
    except (ValueError, OSError, TimeoutError) as err:
        fail(f"cannot browse {url}: {err}")
    if as_json:
        print_json(rows)
    else:
        print_table(f"variables of {url}", rows)


def _client_security(mode: str, user: str, cert_dir: Path) -> Any:
    from biopilot.line.security import CLIENT_APP_URI, ClientSecurity, parse_user
    from biopilot.line.security import load_or_generate_certificate as cert

    if mode not in ("none", "sign-encrypt"):
        raise ValueError(f"--security must be none or sign-encrypt, got {mode!r}")
    if mode == "none":
        if user:
            raise ValueError("--user needs --security sign-encrypt (no plain-text passwords)")
        return None
    name, password = parse_user(user) if user else (None, None)
    return ClientSecurity(cert(cert_dir, "client", CLIENT_APP_URI), name, password)


async def _record(client: Any, sink: Any, duration: float | None, *, quiet: bool) -> None:
    try:
        await _follow(client, duration, quiet=quiet)
    finally:
        await sink.flush()


async def _follow(client: Any, duration: float | None, *, quiet: bool) -> None:
    stop = asyncio.Event()
    run = asyncio.create_task(client.run(stop))
    t0 = time.monotonic()
    with progress(enabled=not quiet) as bar:
        task = bar.add_task("recording", total=duration)
        while not run.done():
            await asyncio.sleep(0.5)
            st = client.stats
            state = "connected" if client.connected.is_set() else "reconnecting"
            bar.update(
                task,
                completed=min(time.monotonic() - t0, duration or float("inf")),
                description=f"{state}: {st.live + st.backfilled} samples",
            )
            if duration is not None and time.monotonic() - t0 >= duration:
                stop.set()
    run.result()


def _summary(client: Any, sink: Any, wall_s: float) -> dict[str, Any]:
    st, ws = client.stats, sink.stats
    return {
        "batches": ", ".join(sink.codes.values()),
        "samples_stored": ws.samples,
        "spectra_stored": ws.spectra,
        "bad_stored": ws.bad,
        "live": st.live,
        "backfilled": st.backfilled,
        "duplicates_skipped": st.duplicates + ws.skipped,
        "sessions": st.sessions,
        "connection_losses": st.connection_losses,
        "last_error": st.last_error,
        "wall_s": round(wall_s, 1),
    }
