"""Data sources (embedded, CSV, synthetic), validation, context series and ingest."""
