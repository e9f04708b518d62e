"""Training: data-parallel steps, the loop, Orbax checkpoints, fine-tuning, metrics.

from research.train import train_and_evaluate
train_and_evaluate(config, workdir)   # config: an experiments/configs/*.py get_config()
"""

from research import _extras

_extras.require("train", "research.train")

from research.signals import Interrupted
from research.train.errors import DiskFullError, DivergenceError, NonFiniteLossError
from research.train.loop import create_model, train_and_evaluate
from research.train.optimizer import build_optimizer, build_plateau, build_schedule

__all__ = [
  "DiskFullError",
  "DivergenceError",
  "Interrupted",
  "NonFiniteLossError",
  "build_optimizer",
  "build_plateau",
  "build_schedule",
  "create_model",
  "train_and_evaluate",
]
