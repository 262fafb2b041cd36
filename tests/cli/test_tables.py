"""CLI tables on a narrow terminal: nothing is cut short, the table keeps its borders."""

from __future__ import annotations

import io

from rich.console import Console

from biopilot.cli import _common


def _printed(monkeypatch, width: int, rows: list[dict[str, str]]) -> list[str]:
    out = io.StringIO()
    monkeypatch.setattr(_common, "console", Console(file=out, width=width))
    _common.print_table("QC per frame", rows)
    return out.getvalue().splitlines()[1:]  # below the title


def test_values_fold_rather_than_lose_their_end_on_an_80_column_terminal(monkeypatch):
    row = {"file": "bench_5_002.tiff", "cells": "1,530", "viable %": "75.9",
           "confluent %": "80.7", "diff. %": "47.3", "viable cells/cm2": "156,214",
           "z mm": "1.096", "agreement": "0.82"}  # qc analyze's table
    lines = _printed(monkeypatch, 80, [row])
    text = "\n".join(lines)
    assert "\u2026" not in text  # no value or header ends in an ellipsis
    assert all(len(ln) <= 80 and "\u2500" <= ln[-1] <= "\u257f" for ln in lines)  # not cropped
    body = [ln for ln in lines if ln.startswith("\u2502")]
    column = [ln.split("\u2502")[6].strip() for ln in body]  # viable cells/cm2, folded
    assert "".join(column) == "156,214"
    assert "bench_5_002.tiff" in body[0]  # the file name is never folded
