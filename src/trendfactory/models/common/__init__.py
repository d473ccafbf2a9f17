"""What several models share: scikit-learn and boosting bases, layers, the torch trainer."""
