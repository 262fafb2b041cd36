"""The biopilot command."""
