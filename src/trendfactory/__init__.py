"""trendfactory: a reproducible model factory for multi-horizon stock-trend prediction."""

# Before anything imports numpy or torch: fix the numerical code paths this process computes
# with (numerics: portable | native; trendfactory.numerics says why and how).
from trendfactory import numerics as _numerics

_numerics.configure_process()

__version__ = "0.1.0"
