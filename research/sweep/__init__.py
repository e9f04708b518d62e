"""Hyperparameter search over research.train: `python -m research.sweep` (see __main__)."""

from research import _extras

_extras.require("train", "research.sweep")
