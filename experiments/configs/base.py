"""Defaults shared by every experiment config; each config file starts from `get_base_config()`.

Keys (every one can be overridden with --config.KEY=VALUE):
  model.name and model.<kwarg>: `research.models.create(name, num_classes=..., **kwargs)`.
  dataset.name / data_dir / train_split / eval_split / augment / standardize: `research.data`.
  dataset.in_memory: 'auto' (default), True or False: serve a split from device memory (the
    whole split as uint8 on every local device; shuffle, augmentation and uint8 -> float run
    inside the compiled steps) or through the host pipeline (grain). 'auto' uses memory when
    this process's share fits dataset.in_memory_limit_mb (default 1024 MB per process).
  steps_per_dispatch: train steps per call of the compiled program (default 100); reduced to
    the gcd with log_every_steps, eval_every_steps and checkpoint_every_steps, so that
    dispatches end at every one of those steps. Results do not depend on it.
  loss: 'softmax_cross_entropy' or 'multiclass_svm'.
  optimizer: a `research.optim` rule (name, learning_rate, the rule's own hyperparameters),
    schedule, weight_decay (+ weight_decay_mode 'l2' | 'l1' | 'decoupled'), clip_norm,
    clip_value, skip_nonfinite, reduce_on_plateau (driven by evaluations).
    Divergence stops a run (exit code 3): a non-finite loss (with skip_nonfinite, more than
    max_skipped_steps such steps in a row, default 10), or a logged training loss above
    max_loss_factor (default 100) x max(the run's first loss, 1), or a
    non-finite evaluation.
  batch_size (global, over all devices and hosts), num_train_steps, log_every_steps,
  eval_every_steps, checkpoint_every_steps, keep_checkpoints, seed.
  init_from: another run's workdir (or checkpoint directory) to start from; head_pattern: the
    regex of the layers that may change shape (default: `research.models.head_pattern(model)`,
    from the model class's HEAD).
  freeze: regex of parameter paths kept fixed ('/'-joined, e.g. '^Dense_0/').
  early_stopping: metric, mode ('max'/'min'), patience (evaluations; 0 = off), min_delta.
  num_devices: 0 = all devices; n = the first n (single process, for comparisons).
"""

import ml_collections
from ml_collections import config_dict


def get_base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.model = ml_collections.ConfigDict({"name": "mlp"})
  config.dataset = ml_collections.ConfigDict(
    dict(
      name="digits",
      data_dir=config_dict.placeholder(str),
      train_split="train",
      eval_split="test",
      augment=config_dict.placeholder(str),
      standardize=False,
      in_memory=config_dict.FieldReference("auto", field_type=object),
      in_memory_limit_mb=1024.0,
    )
  )
  config.loss = "softmax_cross_entropy"
  config.optimizer = ml_collections.ConfigDict(
    dict(
      name="sgd",
      learning_rate=0.1,
      schedule=ml_collections.ConfigDict(
        dict(
          name="constant",
          boundaries=(),
          factor=0.1,
          decay_rate=0.0,
          end_value=0.0,
          tau=0,
          decay_steps=0,
          warmup_steps=0,
          warmup_value=0.0,
        )
      ),
      weight_decay=0.0,
      weight_decay_mode="l2",
      clip_norm=config_dict.placeholder(float),
      clip_value=config_dict.placeholder(float),
      skip_nonfinite=False,
      max_skipped_steps=10,
      max_loss_factor=100.0,
      reduce_on_plateau=ml_collections.ConfigDict(
        dict(
          enabled=False,
          metric="loss",
          factor=0.1,
          patience=10,
          threshold=1e-4,
          cooldown=0,
          min_scale=0.0,
        )
      ),
    )
  )
  config.batch_size = 128
  config.eval_batch_size = 0  # 0: same as batch_size
  config.num_train_steps = 1000
  config.log_every_steps = 50
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  config.keep_checkpoints = 2
  config.seed = 0
  config.steps_per_dispatch = 100
  config.init_from = config_dict.placeholder(str)
  config.head_pattern = config_dict.placeholder(str)
  config.freeze = config_dict.placeholder(str)
  config.early_stopping = ml_collections.ConfigDict(
    dict(metric="accuracy", mode="max", patience=0, min_delta=0.0)
  )
  config.num_devices = 0
  config.tensorboard = True
  config.progress_bar = True
  return config


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
