"""Measuring quality against colour originals."""
