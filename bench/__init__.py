"""Benchmarks: commands that print tables of measured speed (``python -m bench.<name>``). Never run by pytest."""
