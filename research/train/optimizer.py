"""The optax chain a config's `optimizer` block describes, built from `research.optim`.

The block (see `experiments/configs/base.py`) names a rule and its hyperparameters; the chain is

    [clip(clip_value)] -> [clip_by_global_norm(clip_norm)] -> [L2 / L1 term added to g]
      -> rule(learning_rate schedule) -> [decoupled decay x <- (1 - rate) x]

wrapped in `skip_nonfinite` when asked, and in `pack_small_leaves` (the state of all small
leaves kept in one vector per dtype: the same updates, far fewer loops per step on trees of
many small arrays; the optimizer state in checkpoints has that packed layout).
Reduce-on-plateau is not part of the chain: its patience counts evaluations, not steps, so the
loop advances it after each evaluation (`build_plateau`) and the train step multiplies the
chain's updates by its current `scale`.
"""

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import optax

from research import optim
from research.errors import ConfigError

RULES = {
  "sgd": optim.sgd,
  "heavy_ball": optim.heavy_ball,
  "momentum": optim.heavy_ball,
  "nesterov": optim.nesterov,
  "adagrad": optim.adagrad,
  "rmsprop": optim.rmsprop,
  "adadelta": optim.adadelta,
  "adam": optim.adam,
}
SCHEDULES = ("constant", "step_decay", "inverse_time", "linear_decay", "cosine")
WEIGHT_DECAY_MODES = ("l2", "l1", "decoupled")
# Keys of the optimizer block that configure the chain; every other key goes to the rule.
CHAIN_KEYS = frozenset(
  {
    "name",
    "learning_rate",
    "schedule",
    "weight_decay",
    "weight_decay_mode",
    "clip_norm",
    "clip_value",
    "skip_nonfinite",
    "reduce_on_plateau",
    "max_skipped_steps",
    "max_loss_factor",
  }
)
# The chain keys whose values are numbers the injected optimizer (`inject=True`) holds as data:
# a vectorized sweep may vary them. Every other chain key changes the optimizer's structure.
NUMERIC_CHAIN_KEYS = frozenset({"learning_rate", "weight_decay", "clip_norm", "clip_value"})
STRUCTURE_KEYS = CHAIN_KEYS - NUMERIC_CHAIN_KEYS


def _from_config(factory: Callable, *args, **kwargs):
  """factory(*args, **kwargs) given config values: the ValueError with which a research.optim
  (or optax) factory refuses an argument becomes a ConfigError with the same message
  (research.optim imports only jax, optax and numpy, so it cannot raise one itself)."""
  try:
    return factory(*args, **kwargs)
  except ValueError as e:
    raise ConfigError(str(e)) from e


def _as_dict(config) -> dict[str, Any]:
  return config.to_dict() if hasattr(config, "to_dict") else dict(config)


def rule_kwargs(config: Mapping) -> dict[str, Any]:
  """The rule's own hyperparameters: the block's keys that are not chain keys."""
  return {k: v for k, v in _as_dict(config).items() if k not in CHAIN_KEYS}


def _is_number(value) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool)


def check_optimizer_config(config: Mapping) -> None:
  """Raises ConfigError naming the bad value for anything `build_optimizer` would reject
  (a string where a number belongs too, not a TypeError of a comparison)."""
  cfg = _as_dict(config)
  name = cfg.get("name")
  if name not in RULES:
    raise ConfigError(f"optimizer.name={name!r} is unknown; use one of {sorted(RULES)}")
  lr = cfg.get("learning_rate")
  if not isinstance(lr, int | float) or not (lr > 0 and math.isfinite(lr)):  # nan, inf too
    raise ConfigError(f"optimizer.learning_rate={lr!r} must be a positive finite number, e.g. 0.1")
  schedule = cfg.get("schedule") or {}
  sname = schedule.get("name", "constant")
  if sname not in SCHEDULES:
    raise ConfigError(f"optimizer.schedule.name={sname!r} is unknown; use one of {SCHEDULES}")
  warmup_value = schedule.get("warmup_value", 0)
  if schedule.get("warmup_steps", 0) and not (_is_number(warmup_value) and warmup_value > 0):
    raise ConfigError(
      "optimizer.schedule.warmup_value must be positive when warmup_steps > 0, "
      f"got {schedule.get('warmup_value')!r}"
    )
  mode = cfg.get("weight_decay_mode", "l2")
  if mode not in WEIGHT_DECAY_MODES:
    raise ConfigError(
      f"optimizer.weight_decay_mode={mode!r} is unknown; use one of {WEIGHT_DECAY_MODES}"
    )
  weight_decay = cfg.get("weight_decay") or 0.0
  if not (_is_number(weight_decay) and weight_decay >= 0 and math.isfinite(weight_decay)):
    raise ConfigError(f"optimizer.weight_decay={weight_decay!r} must be a finite number >= 0")
  skipped = cfg.get("max_skipped_steps", 0)
  if not isinstance(skipped, int) or skipped < 0:
    raise ConfigError(f"optimizer.max_skipped_steps={skipped!r} must be an integer >= 0")
  factor = cfg.get("max_loss_factor", 100.0)
  if not isinstance(factor, int | float) or not factor > 1:
    raise ConfigError(f"optimizer.max_loss_factor={factor!r} must be a number > 1, e.g. 100")
  for key in ("clip_norm", "clip_value"):
    if cfg.get(key) is not None and not (_is_number(cfg[key]) and cfg[key] > 0):
      raise ConfigError(f"optimizer.{key}={cfg[key]!r} must be positive (or None for no clipping)")


def build_schedule(learning_rate: float, schedule: Mapping | None) -> optax.ScalarOrSchedule:
  """The learning rate eta_k as a float or a function of the step k.

  `schedule.name`: 'constant'; 'step_decay' (eta_0 * factor^(number of boundaries passed));
  'inverse_time' (eta_0 / (1 + decay_rate k)); 'linear_decay' (eta_0 to end_value at step tau,
  then constant); 'cosine' (to 0 at decay_steps). `warmup_steps > 0` runs `warmup_value` for the
  first steps (He et al.'s 0.01 for ResNet-110), boundaries staying counted from step 0.
  """
  schedule = _as_dict(schedule or {})
  name = schedule.get("name", "constant")
  if name == "constant":
    main = learning_rate
  elif name == "step_decay":
    main = _from_config(
      optim.step_decay, learning_rate, tuple(schedule["boundaries"]), schedule["factor"]
    )
  elif name == "inverse_time":
    main = _from_config(optim.inverse_time_decay, learning_rate, schedule["decay_rate"])
  elif name == "linear_decay":
    main = _from_config(
      optim.linear_decay_then_constant, learning_rate, schedule["end_value"], schedule["tau"]
    )
  elif name == "cosine":
    main = _from_config(optax.cosine_decay_schedule, learning_rate, schedule["decay_steps"])
  else:
    raise ConfigError(f"optimizer.schedule.name={name!r} is unknown; use one of {SCHEDULES}")
  warmup_steps = int(schedule.get("warmup_steps", 0) or 0)
  if not warmup_steps:
    return main
  main_fn = main if callable(main) else optax.constant_schedule(main)
  return optax.join_schedules(
    [
      optax.constant_schedule(schedule["warmup_value"]),
      lambda count: main_fn(count + warmup_steps),
    ],
    [warmup_steps],
  )


def _make(factory, inject: bool, *args, **kwargs):
  """factory(*args, **kwargs), or with `inject` through `optax.inject_hyperparams`: numeric
  hyperparameters then live in the optimizer state (booleans and strings stay static). The
  arguments are config values: a ValueError refusing one is a ConfigError (`_from_config`)."""
  if not inject:
    return _from_config(factory, *args, **kwargs)
  names = list(inspect.signature(factory).parameters)
  kwargs = {**dict(zip(names, args, strict=False)), **kwargs}
  static = tuple(k for k, v in kwargs.items() if isinstance(v, bool | str) or v is None)
  return _from_config(optax.inject_hyperparams(factory, static_args=static), **kwargs)


def build_optimizer(config: Mapping, *, inject: bool = False) -> optax.GradientTransformation:
  """The optax chain of an `optimizer` config block (module docstring gives the order).

  Args:
    config: the block: `name` (one of RULES), `learning_rate` (> 0), `schedule`, `weight_decay`
      with `weight_decay_mode` ('l2' adds wd x to g, 'l1' adds wd sign(x), 'decoupled' multiplies
      x by 1 - wd after the step), `clip_value`, `clip_norm`, `skip_nonfinite`, and the rule's own
      hyperparameters (`beta`, `b1`, `decay`, ...).
    inject: build every part through `optax.inject_hyperparams`, so that its numeric
      hyperparameters are arrays of the state (a vectorized sweep stacks the states of trials
      with different values and vmaps one update over them). The updates are the same.

  Returns:
    An `optax.GradientTransformationExtraArgs`, wrapped in `research.optim.pack_small_leaves`.
  """
  check_optimizer_config(config)
  cfg = _as_dict(config)
  parts = []
  if cfg.get("clip_value") is not None:
    parts.append(_make(optim.clip, inject, cfg["clip_value"]))
  if cfg.get("clip_norm") is not None:
    parts.append(_make(optim.clip_by_global_norm, inject, cfg["clip_norm"]))
  weight_decay = cfg.get("weight_decay", 0.0) or 0.0
  mode = cfg.get("weight_decay_mode", "l2")
  if weight_decay and mode == "l2":
    parts.append(_make(optim.add_l2_penalty, inject, weight_decay))
  elif weight_decay and mode == "l1":
    parts.append(_make(optim.add_l1_penalty, inject, weight_decay))
  learning_rate = build_schedule(cfg["learning_rate"], cfg.get("schedule"))
  try:
    parts.append(_make(RULES[cfg["name"]], inject, learning_rate, **rule_kwargs(cfg)))
  except TypeError as e:
    raise ConfigError(
      f"optimizer {cfg['name']!r} rejected its hyperparameters {rule_kwargs(cfg)}: {e}"
    ) from e
  if weight_decay and mode == "decoupled":
    parts.append(_make(optim.decoupled_weight_decay, inject, weight_decay))
  tx = optax.chain(*parts) if len(parts) > 1 else parts[0]
  if cfg.get("skip_nonfinite", False):
    tx = optim.skip_nonfinite(tx)
  return optim.pack_small_leaves(tx)


def build_plateau(config: Mapping) -> optax.GradientTransformationExtraArgs | None:
  """`research.optim.reduce_on_plateau` from `optimizer.reduce_on_plateau`, or None if off."""
  plateau = _as_dict(_as_dict(config).get("reduce_on_plateau") or {})
  if not plateau.get("enabled", False):
    return None
  return _from_config(
    optim.reduce_on_plateau,
    factor=plateau.get("factor", 0.1),
    patience=plateau.get("patience", 10),
    threshold=plateau.get("threshold", 1e-4),
    cooldown=plateau.get("cooldown", 0),
    min_scale=plateau.get("min_scale", 0.0),
  )
