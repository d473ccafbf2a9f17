"""The DVC stages: thin entry points, `python -m trendfactory.stages.<name>`."""
