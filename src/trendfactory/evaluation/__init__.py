"""Evaluation: classification, signal-quality (IC) and trading metrics."""
