"""Acoustic cell processing: acoustophoresis sorting and sonoporation dose."""
