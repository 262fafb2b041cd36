"""Specifications, QC results and batch disposition."""
