"""CLI: start, end, list, show, export and report batches kept in the historian."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import typer

from biopilot.cli._common import (
    JSON_OPTION,
    console,
    current_user,
    fail,
    open_store,
    print_json,
    print_table,
    resolve_batch,
)
from biopilot.store import StoreError

DB_OPTION = typer.Option(Path("line.db"), "--db", help="Historian (SQLite file or URL).")

batches_app = typer.Typer(help="Batches kept in the historian.", no_args_is_help=True)
batch_app = typer.Typer(help="One batch: start, end, show or export it.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the batches/batch/report commands to ``app``."""
    app.add_typer(batches_app, name="batches")
    app.add_typer(batch_app, name="batch")
    app.command("report")(report)


@batches_app.command("list")
def list_batches(db: Path = DB_OPTION, json_out: bool = JSON_OPTION) -> None:
    """List every batch: code, unit, product, start, status and row counts."""
    with open_store(db) as h:
        infos = h.list_batches()
    if json_out:
        print_json([b.as_dict() for b in infos])
        return
    rows = [{"id": b.id, "code": b.code, "unit": b.unit, "product": b.product,
             "start (UTC)": b.start_utc.strftime("%Y-%m-%d %H:%M"), "status": b.status,
             "samples": b.n_samples, "spectra": b.n_spectra, "events": b.n_events}
            for b in infos]
    if not rows:
        console.print(f"No batches in {db}.")
        return
    print_table(f"Batches in {db}", rows)


@batch_app.command("start")
def start(
    code: str = typer.Argument(..., help="New batch code (e.g. a patient's lot, 'CT-0042')."),
    product: str = typer.Option(..., "--product", help="Product made (created if new)."),
    unit: str = typer.Option("INC-01", "--unit", help="Unit it runs on (created if new)."),
    kind: str = typer.Option("imaging incubator", "--kind", help="Kind of a new unit."),
    site: str = typer.Option("site", "--site", help="Site of a new unit."),
    area: str = typer.Option("cell culture", "--area", help="Area of a new unit."),
    reason: str = typer.Option("batch start", "--reason", help="Why, for the audit trail."),
    author: str | None = typer.Option(None, "--author", help="Who starts it (default: you)."),
    db: Path = DB_OPTION,
    create: bool = typer.Option(False, "--create", help="Create the store if it is missing."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Start a batch by hand (a cell culture imaged, with no line to record it); audited.

    Then `qc analyze --db DB --batch CODE` files QC results to it and `qc release` judges it.
    """
    from biopilot.store.audit import AuditTrail

    who = author or current_user()
    with open_store(db, create=create) as h:
        try:
            if unit not in h.unit_names():
                h.ensure_unit(site, area, unit, kind=kind)
            h.ensure_product(product)
            bid = h.start_batch(code, unit, product, None, datetime.now(UTC), {"operator": who})
            AuditTrail(h).record(
                who,
                "batch_start",
                "batch",
                code,
                reason=reason,
                new={"id": bid, "unit": unit, "product": product},
            )
            info = h.batch(bid)
        except (StoreError, ValueError) as err:
            fail(str(err))
    if json_out:
        print_json(info.as_dict())
    else:
        console.print(f"started batch {code} (id {bid}) of {product} on {unit} in {db}")


@batch_app.command("end")
def end(
    batch: str = typer.Argument(..., help="Batch id or code."),
    status: str = typer.Option("complete", "--status", help="complete, stopped or aborted."),
    reason: str = typer.Option("batch end", "--reason", help="Why, for the audit trail."),
    author: str | None = typer.Option(None, "--author", help="Who ends it (default: you)."),
    db: Path = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """End a running batch (complete, stopped or aborted); audited."""
    from biopilot.store.audit import AuditTrail

    who = author or current_user()
    with open_store(db) as h:
        try:
            info = h.batch(resolve_batch(batch))
            h.end_batch(info.id, datetime.now(UTC), status)
            AuditTrail(h).record(
                who,
                "batch_end",
                "batch",
                info.code,
                reason=reason,
                old={"status": info.status},
                new={"status": status},
            )
            info = h.batch(info.id)
        except (StoreError, ValueError) as err:
            fail(str(err))
    if json_out:
        print_json(info.as_dict())
    else:
        console.print(f"ended batch {info.code}: {info.status}")


@batch_app.command("show")
def show(
    batch: str = typer.Argument(..., help="Batch id or code."),
    db: Path = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Show one batch: identity, phases, tags with their sample counts, events."""
    with open_store(db) as h:
        try:
            info = h.batch(resolve_batch(batch))
        except StoreError as err:
            fail(str(err))
        tags = h.batch_tags(info.id)
        events = h.read_events(info.id)
    if json_out:
        print_json({**info.as_dict(), "tags": tags, "events": [asdict(e) for e in events]})
        return
    head = info.as_dict()
    console.print(f"[bold]{info.code}[/] on {info.unit} ({info.product}) - {info.status}")
    console.print(f"start {head['start_utc']}  end {head['end_utc']}  metadata {info.metadata}")
    print_table("Phases", [{"phase": p["name"], "start (UTC)": p["start_utc"],
                            "end (UTC)": p["end_utc"]} for p in head["phases"]])
    print_table("Tags", [{"tag": t, "units": u} for t, u in sorted(tags.items())])
    print_table("Events", [{"time (UTC)": e.time_utc.strftime("%Y-%m-%d %H:%M"), "kind": e.kind,
                            "severity": e.severity, "message": e.message} for e in events])


@batch_app.command("export")
def export(
    batch: str = typer.Argument(..., help="Batch id or code."),
    parquet: Path = typer.Option(..., "--parquet", help="Parquet file for the samples."),
    db: Path = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Export a batch to Parquet (samples; spectra in a sibling .spectra.parquet file)."""
    with open_store(db) as h:
        try:
            info = h.batch(resolve_batch(batch))
            files = h.export_parquet(info.id, parquet)
        except (StoreError, ValueError, OSError) as err:
            fail(str(err))
    if json_out:
        print_json({"batch": info.code, "files": [str(f) for f in files]})
    else:
        for f in files:
            console.print(f"wrote {f}")


def report(
    batch: list[str] = typer.Argument(..., help="Batch ids or codes (one trace each)."),
    html: Path = typer.Option(..., "--html", help="HTML file to write."),
    db: Path = DB_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Write an HTML report with plots (VCD, viability, metabolites, titer, DO, pH, Raman)."""
    from biopilot.web.report import write_report

    with open_store(db) as h:
        try:
            ids = [h.batch(resolve_batch(b)).id for b in batch]
            out = write_report(h, ids, html, title=f"biopilot report: {', '.join(batch)}")
        except (StoreError, ValueError, OSError) as err:
            fail(str(err))
    if json_out:
        print_json({"html": str(out), "batches": ids})
    else:
        console.print(f"wrote {out}")
