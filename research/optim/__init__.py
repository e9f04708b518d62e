"""The lecture's optimizers as Optax transformations, written from the lecture's equations.

Two layers, as in optax: `scale_by_*` transformations hold a rule's arithmetic on raw
gradients; the aliases (`adam`, `heavy_ball`, ...) chain them with the learning rate. Everything
composes with `optax.chain`, `optax.inject_hyperparams` and `optax.multi_transform`.
A factory that shares its name with optax's (`sgd`, `adam`, `rmsprop`, `adagrad`, `adadelta`,
`clip`, `clip_by_global_norm`, `global_norm`, `trace`, `scale_by_adam`, `scale_by_rms`,
`scale_by_stddev`, `scale_by_adadelta`, `scale_by_learning_rate`) takes optax 0.2.8's signature
and defaults and returns optax's state layout, so it swaps in for optax's in one line; the
lecture's forms are explicit arguments or lecture-named factories (`heavy_ball`, `nesterov`).
`pack_small_leaves` and `flatten_leaves` wrap a rule to run it on a few flat buffers.
This package imports only jax, optax and numpy. State dtypes: see `research.optim.base`.
"""

from research.optim.adaptive import (
  DeltaBarDeltaState,
  ScaleByAdaDeltaState,
  ScaleByAdamState,
  ScaleByRmsState,
  ScaleByRmsWithCountState,
  ScaleByRssState,
  ScaleByRStdDevState,
  ScaleByRStdDevWithCountState,
  adadelta,
  adagrad,
  adam,
  delta_bar_delta,
  rmsprop,
  scale_by_adadelta,
  scale_by_adagrad,
  scale_by_adam,
  scale_by_delta_bar_delta,
  scale_by_rms,
  scale_by_rmsprop,
  scale_by_stddev,
)
from research.optim.base import EmptyState, ScaleByScheduleState, scale_by_learning_rate
from research.optim.clipping import ClipState, clip, clip_by_global_norm, global_norm
from research.optim.layout import (
  PACK_MAX_LEAF_SIZE,
  flatten_leaves,
  pack_small_leaves,
  pack_tree,
  unpack_tree,
)
from research.optim.line_search import ArmijoState, armijo
from research.optim.momentum import (
  HeavyBallState,
  NesterovState,
  TraceState,
  heavy_ball,
  nesterov,
  nesterov_position,
  scale_by_heavy_ball,
  scale_by_nesterov,
  sgd,
  trace,
)
from research.optim.regularization import (
  PenaltyState,
  SkipNonfiniteState,
  WeightDecaySchedule,
  add_l1_penalty,
  add_l2_penalty,
  all_finite,
  decoupled_weight_decay,
  skip_nonfinite,
  weight_decay_term,
)
from research.optim.schedules import (
  ReduceOnPlateauState,
  inverse_time_decay,
  linear_decay_then_constant,
  reduce_on_plateau,
  step_decay,
)
from research.optim.second_order import NewtonState, newton, preconditioned_gd

__all__ = [
  "PACK_MAX_LEAF_SIZE",
  "flatten_leaves",
  "pack_small_leaves",
  "pack_tree",
  "unpack_tree",
  "ArmijoState",
  "ClipState",
  "DeltaBarDeltaState",
  "EmptyState",
  "HeavyBallState",
  "NesterovState",
  "NewtonState",
  "PenaltyState",
  "ReduceOnPlateauState",
  "ScaleByAdaDeltaState",
  "ScaleByAdamState",
  "ScaleByRStdDevState",
  "ScaleByRStdDevWithCountState",
  "ScaleByRmsState",
  "ScaleByRmsWithCountState",
  "ScaleByRssState",
  "ScaleByScheduleState",
  "SkipNonfiniteState",
  "TraceState",
  "WeightDecaySchedule",
  "adadelta",
  "adagrad",
  "adam",
  "add_l1_penalty",
  "add_l2_penalty",
  "all_finite",
  "armijo",
  "clip",
  "clip_by_global_norm",
  "decoupled_weight_decay",
  "delta_bar_delta",
  "global_norm",
  "heavy_ball",
  "inverse_time_decay",
  "linear_decay_then_constant",
  "nesterov",
  "nesterov_position",
  "newton",
  "preconditioned_gd",
  "reduce_on_plateau",
  "rmsprop",
  "scale_by_adadelta",
  "scale_by_adagrad",
  "scale_by_adam",
  "scale_by_delta_bar_delta",
  "scale_by_heavy_ball",
  "scale_by_learning_rate",
  "scale_by_nesterov",
  "scale_by_rms",
  "scale_by_rmsprop",
  "scale_by_stddev",
  "sgd",
  "skip_nonfinite",
  "step_decay",
  "trace",
  "weight_decay_term",
]
