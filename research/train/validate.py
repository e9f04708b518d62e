"""Config checks that run before anything is compiled, each failing with a message that names
the bad value and the fix."""

import dataclasses
import inspect
import json
import os
import re
import types
import typing

import ml_collections

from research import config as config_lib
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
  config = config_lib.complete(config)  # the other keys take the schema's defaults
  for key in (
    "batch_size",
    "num_train_steps",
    "eval_every_steps",
    "checkpoint_every_steps",
    "log_every_steps",
  ):
    _positive_int(config, key)
  _positive_int(config, "steps_per_dispatch")
  eval_batch_size = config.eval_batch_size
  if not isinstance(eval_batch_size, int) or eval_batch_size < 0:
    raise ConfigError(
      f"config.eval_batch_size={eval_batch_size!r} must be 0 (same as batch_size) "
      "or a positive integer"
    )
  optimizer_lib.check_optimizer_config(config.optimizer)
  steps.get_loss(config.loss)
  es = config.early_stopping
  if es.mode not in ("max", "min"):
    raise ConfigError(f"early_stopping.mode={es.mode!r} must be 'max' or 'min'")
  if es.patience < 0:
    raise ConfigError(f"early_stopping.patience={es.patience} must be >= 0 (0 turns it off)")
  for key in ("freeze", "head_pattern", "init_layers"):
    if config[key]:
      try:
        re.compile(config[key])
      except re.error as e:
        raise ConfigError(f"config.{key}={config[key]!r} is not a valid regex: {e}") from e


# Model options the program sets itself (with_batch_axis): not settable from a config.
PROGRAM_SET_OPTIONS = frozenset({"axis_name"})
OVERRIDE_TYPES = (int, float, bool, str, tuple)  # parsed as config_flags parses such fields


def _field_type(annotation, default) -> type:
  """The config field type of an option: its annotation's (Optional stripped), else its
  default's when that is one of OVERRIDE_TYPES, else object (any Python literal)."""
  args = [a for a in typing.get_args(annotation) if a is not type(None)]
  if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
    annotation = args[0]
  annotation = typing.get_origin(annotation) or annotation
  if annotation in OVERRIDE_TYPES:
    return annotation
  if annotation is inspect.Parameter.empty and type(default) in OVERRIDE_TYPES:
    return type(default)  # an untyped rule argument: adam's b1=0.9
  return object  # typing.Any (kernel_init: a name or a function), or a None default


def settable_keys(section: str, name: str) -> dict[str, tuple[type, object]]:
  """The keys `config.<section>` takes besides those its recipe sets: {key: (type, default)}.

  'model': the options of the model `name` (`research.models.options`) but those the program
  sets; 'optimizer': the keyword arguments of the rule `name` but the learning rate and the
  chain's keys (`optimizer.rule_kwargs` passes the block's other keys to the rule). Raises
  ConfigError for an unknown model or rule name.
  """
  if section == "model":
    found = {k: v for k, v in models.options(name).items() if k not in PROGRAM_SET_OPTIONS}
  elif section == "optimizer":
    if name not in optimizer_lib.RULES:
      raise ConfigError(
        f"optimizer.name={name!r} is unknown; use one of {sorted(optimizer_lib.RULES)}"
      )
    params = inspect.signature(optimizer_lib.RULES[name]).parameters.values()
    found = {
      p.name: (p.annotation, p.default)
      for p in params
      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
      and p.name != "learning_rate"
      and p.name not in optimizer_lib.CHAIN_KEYS
    }
  else:
    return {}
  missing = (inspect.Parameter.empty, dataclasses.MISSING)
  return {
    k: (_field_type(a, d), None if any(d is m for m in missing) else d)
    for k, (a, d) in found.items()
  }


def check_metric(config: ml_collections.ConfigDict, task: str, num_classes: int) -> None:
  """The monitored metrics must be ones that evaluation produces for this task."""
  known = models.eval_metrics(task, num_classes)
  if config.early_stopping.metric not in known:
    raise ConfigError(
      f"early_stopping.metric={config.early_stopping.metric!r} is not produced "
      f"for {task}; use one of {known}"
    )
  plateau = config_lib.complete(config).optimizer.reduce_on_plateau
  if plateau.enabled and plateau.metric not in known:
    raise ConfigError(
      f"optimizer.reduce_on_plateau.metric={plateau.metric!r} is not produced "
      f"for {task}; use one of {known}"
    )


def check_validation(config: ml_collections.ConfigDict, has_validation: bool) -> None:
  """Early stopping and reduce on plateau watch the validation set: refused without one."""
  if has_validation:
    return
  config = config_lib.complete(config)
  watching = []
  if config.early_stopping.patience:
    watching.append(f"early_stopping.patience={config.early_stopping.patience}")
  if config.optimizer.reduce_on_plateau.enabled:
    watching.append("optimizer.reduce_on_plateau.enabled=True")
  if watching:
    raise ConfigError(
      f"{' and '.join(watching)} watch the validation set, but dataset.validation="
      f"{config.dataset.validation!r} leaves none; hold some out (e.g. "
      "--config.dataset.validation=0.1) or turn them off"
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
  """Raises if `workdir` holds a sweep (DIR/sweep.json, written by research.sweep) or a run of
  a different config (saved as DIR/config.json)."""
  if os.path.exists(os.path.join(workdir, "sweep.json")):
    raise WorkdirError(
      f"workdir {workdir!r} holds a sweep (its sweep.json), not a run; use another --workdir "
      "(a sweep's trials are its subdirectories; rerun the sweep to resume them)"
    )
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
