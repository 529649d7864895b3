"""Floor 4: the composition root (command line, demo, report)."""

__version__ = "0.1.0"
