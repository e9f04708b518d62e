"""Defaults shared by every experiment config; each config file starts from `get_base_config()`.

The schema (every key, its default, what it means) is `research.config.defaults()`: the
one place defaults live. This module adds the recipes' helpers.
"""

import ml_collections

from research import config as config_lib


def get_base_config() -> ml_collections.ConfigDict:
  """Every key with its default: `research.config.defaults()`."""
  return config_lib.defaults()


def set_run(
  config: ml_collections.ConfigDict,
  *,
  batch_size: int,
  steps: int,
  log_every: int,
  eval_every: int,
  test: bool = False,
) -> ml_collections.ConfigDict:
  """Sets a recipe's batch, length and intervals (a checkpoint at every evaluation).

  `test=True` is the ':test' variant's run: also no TensorBoard and no progress bar.
  """
  config.batch_size = batch_size
  config.num_train_steps = steps
  config.log_every_steps = log_every
  config.eval_every_steps = eval_every
  config.checkpoint_every_steps = eval_every
  if test:
    config.tensorboard = False
    config.progress_bar = False
  return config


def parse_arg(arg: str | None) -> tuple[str, bool]:
  """'resnet56,test' -> ('resnet56', True); the 'test' flag is the runlocal switch."""
  parts = [p for p in (arg or "").split(",") if p]
  return ",".join(p for p in parts if p != "test"), "test" in parts
