"""trendfactory: a reproducible model factory for multi-horizon stock-trend prediction."""
__version__ = "0.1.0"
