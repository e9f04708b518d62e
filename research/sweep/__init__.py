"""Hyperparameter search over research.train: `python -m research.sweep` (see __main__)."""
