"""biopilot: pilots biomanufacturing lines in real time."""

__version__ = "0.1.0"
