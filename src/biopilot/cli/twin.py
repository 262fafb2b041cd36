"""CLI: Serve the digital twin as an OPC UA server."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress

app = typer.Typer(help="Serve the digital twin as an OPC UA server.", no_args_is_help=True)


@app.command()
def serve(
    units: int = typer.Option(3, "--units", min=1, max=50, help="Number of bioreactors."),
    speed: float = typer.Option(
        3600.0, "--speed", min=1.0, help="Simulated seconds per wall second (3600: 1 h/s)."
    ),
    port: int = typer.Option(4840, "--port", min=0, max=65535, help="TCP port (0: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    seed: int = typer.Option(0, "--seed", help="Unit i runs the batch of seed + i."),
    security: str = typer.Option(
        "none", "--security", help="none, or sign-encrypt (Basic256Sha256 + username login)."
    ),
    user: list[str] = typer.Option(
        [], "--user", help="NAME:PASSWORD allowed to log in (sign-encrypt; repeatable)."
    ),
    cert_dir: Path = typer.Option(
        Path("pki"), "--cert-dir", help="Certificates (a self-signed one is made if absent)."
    ),
    duration: float = typer.Option(
        0.0, "--duration", min=0.0, help="Stop after this many wall seconds (0: at harvest)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Serve N stepping twins over OPC UA (ISA-88 address space, history, setpoints).

    The twins step one simulated minute at a time, speed/60 steps per wall second; values
    carry the simulated UTC time as source timestamp; Raman every 15 simulated minutes.
    Runs until every unit is harvested (or --duration, or Ctrl-C).
    """
    from biopilot.line.security import SERVER_APP_URI, ServerSecurity, parse_user
    from biopilot.line.security import load_or_generate_certificate as cert
    from biopilot.line.server import LineServer
    from biopilot.line.twin_server import TwinLine

    logging.getLogger("asyncua").setLevel(logging.ERROR)
    try:
        if security not in ("none", "sign-encrypt"):
            raise ValueError(f"--security must be none or sign-encrypt, got {security!r}")
        sec = None
        if security == "sign-encrypt":
            if not user:
                raise ValueError("--security sign-encrypt needs at least one --user NAME:PASSWORD")
            users = dict(parse_user(u) for u in user)
            sec = ServerSecurity(cert(cert_dir, "server", SERVER_APP_URI), users)
        server = LineServer(host=host, port=port, security=sec)
        line = TwinLine(server, units, seed=seed, speed=speed)
    except (ValueError, OSError) as err:
        fail(str(err))
    t0 = time.monotonic()
    try:
        asyncio.run(_serve(server, line, duration or None, as_json))
    except KeyboardInterrupt:
        pass
    except OSError as err:
        fail(f"cannot serve on {host}:{port}: {err}")
    summary = {
        "endpoint": server.endpoint,
        "units": list(line.units),
        "speed_sim_s_per_wall_s": speed,
        "simulated_minutes": line.steps,
        "wall_s": round(time.monotonic() - t0, 1),
        "security": security,
    }
    if as_json:
        print_json(summary)
    else:
        print_table("twin server", [summary])


@app.command()
def tagmap(
    units: int = typer.Option(3, "--units", min=1, max=50, help="Number of bioreactors."),
    out: Path = typer.Option(..., "--out", help="YAML file to write."),
    raman: bool = typer.Option(True, "--raman/--no-raman", help="Map the Raman spectra too."),
) -> None:
    """Write the tag map of `twin serve` (every PV of every unit) to a YAML file."""
    import yaml

    from biopilot.line.twin_server import twin_tagmap

    body = twin_tagmap(units, raman=raman).model_dump(mode="json", exclude_none=True)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    except OSError as err:
        fail(f"cannot write {out}: {err}")
    typer.echo(str(out))


async def _serve(server: object, line: object, duration: float | None, quiet: bool) -> None:
    from biopilot.line.server import LineServer
    from biopilot.line.twin_server import TwinLine

    assert isinstance(server, LineServer) and isinstance(line, TwinLine)
    await server.start()
    try:
        with progress(enabled=not quiet) as bar:
            total = int(next(iter(line.units.values())).twin.recipe.harvest_h * 60)
            task = bar.add_task(f"serving {server.endpoint} (simulated min)", total=total)
            run = asyncio.create_task(line.run(duration))
            while not run.done():
                await asyncio.sleep(0.5)
                bar.update(task, completed=line.steps)
            run.result()
    finally:
        await server.stop()
