"""Shared physics: culture kinetics, optics (light propagation) and acoustics."""
