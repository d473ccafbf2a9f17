"""Features: indicators, stock and context features, labels, walk-forward folds and their scalers."""
