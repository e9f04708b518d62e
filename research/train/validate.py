"""Config checks that run before anything is compiled, each failing with a message that names
the bad value and the fix."""

import json
import os
import re

import ml_collections

from research import models
from research.errors import ConfigError, WorkdirError
from research.train import optimizer as optimizer_lib
from research.train import steps

REQUIRED = (
  "model",
  "dataset",
  "optimizer",
  "batch_size",
  "num_train_steps",
  "eval_every_steps",
  "checkpoint_every_steps",
  "log_every_steps",
  "seed",
  "init_from",
  "freeze",
  "early_stopping",
)
# Keys that may change between a run and its resumption (they do not change the computation).
RESUMABLE_CHANGES = (
  "num_train_steps",
  "progress_bar",
  "tensorboard",
  "log_every_steps",
  "steps_per_dispatch",
)


def _positive_int(config, key: str) -> None:
  value = config[key]
  if not isinstance(value, int) or value <= 0:
    raise ConfigError(f"config.{key}={value!r} must be a positive integer")


def check_config(config: ml_collections.ConfigDict) -> None:
  """Checks what needs neither data nor devices (names, numbers, patterns)."""
  missing = [k for k in REQUIRED if k not in config]
  if missing:
    raise ConfigError(f"config lacks {missing}; start from experiments/configs/base.py")
  for key in (
    "batch_size",
    "num_train_steps",
    "eval_every_steps",
    "checkpoint_every_steps",
    "log_every_steps",
  ):
    _positive_int(config, key)
  if "steps_per_dispatch" in config:
    _positive_int(config, "steps_per_dispatch")
  eval_batch_size = config.get("eval_batch_size", 0)
  if not isinstance(eval_batch_size, int) or eval_batch_size < 0:
    raise ConfigError(
      f"config.eval_batch_size={eval_batch_size!r} must be 0 (same as batch_size) "
      "or a positive integer"
    )
  optimizer_lib.check_optimizer_config(config.optimizer)
  steps.get_loss(config.get("loss", "softmax_cross_entropy"))
  es = config.early_stopping
  if es.mode not in ("max", "min"):
    raise ConfigError(f"early_stopping.mode={es.mode!r} must be 'max' or 'min'")
  if es.patience < 0:
    raise ConfigError(f"early_stopping.patience={es.patience} must be >= 0 (0 turns it off)")
  for key in ("freeze", "head_pattern"):
    if config.get(key):
      try:
        re.compile(config[key])
      except re.error as e:
        raise ConfigError(f"config.{key}={config[key]!r} is not a valid regex: {e}") from e


def check_metric(config: ml_collections.ConfigDict, task: str, num_classes: int) -> None:
  """The monitored metrics must be ones that evaluation produces for this task."""
  known = models.eval_metrics(task, num_classes)
  if config.early_stopping.metric not in known:
    raise ConfigError(
      f"early_stopping.metric={config.early_stopping.metric!r} is not produced "
      f"for {task}; use one of {known}"
    )
  plateau = config.optimizer.get("reduce_on_plateau")
  if plateau and plateau.get("enabled") and plateau.metric not in known:
    raise ConfigError(
      f"optimizer.reduce_on_plateau.metric={plateau.metric!r} is not produced "
      f"for {task}; use one of {known}"
    )


def _flatten(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def config_json(config: ml_collections.ConfigDict) -> str:
  return config.to_json_best_effort(indent=2, sort_keys=True)


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raises if `workdir` holds a run of a different config (saved as DIR/config.json)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    saved = _flatten(json.load(f))
  current = _flatten(json.loads(config_json(config)))
  diffs = [
    f"{k}: {saved.get(k, '<absent>')!r} there, {current.get(k, '<absent>')!r} now"
    for k in sorted(set(saved) | set(current))
    if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)
  ]
  if diffs:
    listed = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
    raise WorkdirError(
      f"workdir {workdir!r} holds a run with a different config ({listed}); use a new "
      "--workdir, or pass the same config to resume that run"
    )


def save_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  path = os.path.join(workdir, "config.json")
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    f.write(config_json(config))
  os.replace(tmp, path)
