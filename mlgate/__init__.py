"""mlgate: a continuous machine-learning gate for GitHub (dataset statistics and model promotion)."""

__version__ = "1.0.0"
