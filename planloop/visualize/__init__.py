"""Diagrams of machines, plans and runs (placeholder until the renderer lands)."""

from __future__ import annotations
