"""Holographic imaging: holograms to phase, cells, features and classes."""
