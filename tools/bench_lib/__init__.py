"""Modules of tools/bench, ferry's benchmark suite (Python 3 standard library only)."""
