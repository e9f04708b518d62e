"""Learning-rate schedules (functions step -> eta_k, usable wherever optax takes a schedule)
and reduce-on-plateau, which a training loop drives with a monitored validation value.

SGD converges when sum_k eta_k = inf and sum_k eta_k^2 < inf (Goodfellow et al. 8.3.1); 1/k
decay satisfies both. In practice eta decays linearly until step tau and then stays constant.
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.optim import base


def inverse_time_decay(init_value: float, decay_rate: float = 1.0) -> base.Schedule:
  """eta_k = eta_0 / (1 + decay_rate k): sum eta_k diverges, sum eta_k^2 converges.

  Args:
    init_value: eta_0.
    decay_rate: how fast eta falls; eta_k halves at k = 1 / decay_rate.

  Returns:
    A schedule `step -> eta_k`.
  """
  if decay_rate < 0:
    raise ValueError(f"inverse_time_decay needs decay_rate >= 0, got {decay_rate}.")

  def schedule(step):
    return init_value / (1.0 + decay_rate * jnp.asarray(step, jnp.float32))

  return schedule


def linear_decay_then_constant(init_value: float, end_value: float, tau: int) -> base.Schedule:
  """eta_k = (1 - k/tau) eta_0 + (k/tau) eta_tau for k <= tau, eta_tau afterwards
  (Goodfellow et al. 8.3.1, usually eta_tau about eta_0 / 100).

  Args:
    init_value: eta_0.
    end_value: eta_tau.
    tau: the step at which the decay ends (> 0).

  Returns:
    A schedule `step -> eta_k`.
  """
  if tau <= 0:
    raise ValueError(f"linear_decay_then_constant needs tau > 0 steps, got tau={tau}.")

  def schedule(step):
    alpha = jnp.clip(jnp.asarray(step, jnp.float32) / tau, 0.0, 1.0)
    return (1.0 - alpha) * init_value + alpha * end_value

  return schedule


def step_decay(init_value: float, boundaries: Sequence[int], factor: float = 0.1) -> base.Schedule:
  """eta_k = eta_0 factor^(number of boundaries b with b <= k), e.g. x0.1 at epochs 30, 60, 90.

  Args:
    init_value: eta_0.
    boundaries: increasing steps at which eta is multiplied by `factor`.
    factor: the multiplier applied at each boundary.

  Returns:
    A schedule `step -> eta_k`.
  """
  bounds = np.asarray(list(boundaries), np.int64)
  if bounds.size and np.any(np.diff(bounds) <= 0):
    raise ValueError(f"step_decay needs strictly increasing boundaries, got {list(boundaries)}.")

  def schedule(step):
    passed = jnp.sum(jnp.asarray(step) >= jnp.asarray(bounds, jnp.int32)) if bounds.size else 0
    return init_value * jnp.asarray(factor, jnp.float32) ** passed

  return schedule


class ReduceOnPlateauState(NamedTuple):
  """State of `reduce_on_plateau`."""

  scale: jax.Array  # () float32: the current factor on the updates (1 at the start).
  best_value: jax.Array  # () float32: the best monitored value seen (inf at the start).
  plateau_count: jax.Array  # () int32: observations since the last improvement.
  cooldown_count: jax.Array  # () int32: observations left before plateaus count again.
  num_reductions: jax.Array  # () int32: how many times the scale was reduced.


def reduce_on_plateau(
  factor: float = 0.1,
  patience: int = 10,
  threshold: float = 1e-4,
  cooldown: int = 0,
  min_scale: float = 0.0,
) -> optax.GradientTransformationExtraArgs:
  """eta <- factor * eta when the monitored validation value stops improving (the lecture:
  "if performance on the validation set no longer improves, lower eta to alpha eta").

  Call `update(updates, state, params, value=v)` with the monitored value v (lower is better,
  e.g. the validation loss). Each call with `observe=True` (the default) is one observation: a
  value below best * (1 - threshold) (relative, for positive values) is an improvement; after
  more than `patience` observations without one, the scale is multiplied by `factor` (not below
  `min_scale`), and the next `cooldown` observations are ignored. A loop that evaluates once
  per epoch but steps every batch passes `observe=False` on the other steps. The updates are
  multiplied by the current `state.scale`, so chain it after the rule:
  `optax.chain(heavy_ball(lr), reduce_on_plateau(...))`.

  Args:
    factor: alpha in (0, 1).
    patience: observations without improvement tolerated before reducing.
    threshold: the relative improvement that counts.
    cooldown: observations ignored after a reduction.
    min_scale: the smallest scale.

  Returns:
    An `optax.GradientTransformationExtraArgs` with state `ReduceOnPlateauState`.
  """
  if not 0.0 < factor < 1.0:
    raise ValueError(f"reduce_on_plateau needs 0 < factor < 1, got factor={factor}.")

  def init_fn(params):
    del params
    return ReduceOnPlateauState(
      scale=jnp.ones([], jnp.float32),
      best_value=jnp.asarray(jnp.inf, jnp.float32),
      plateau_count=jnp.zeros([], jnp.int32),
      cooldown_count=jnp.zeros([], jnp.int32),
      num_reductions=jnp.zeros([], jnp.int32),
    )

  def observe_value(state, value):
    value = jnp.asarray(value, jnp.float32)
    margin = threshold * jnp.abs(state.best_value)
    improved = jnp.where(
      jnp.isinf(state.best_value), value < state.best_value, value < state.best_value - margin
    )
    best = jnp.where(improved, value, state.best_value)
    in_cooldown = state.cooldown_count > 0
    plateau = jnp.where(improved | in_cooldown, 0, state.plateau_count + 1)
    reduce = plateau > patience
    scale = jnp.where(reduce, jnp.maximum(state.scale * factor, min_scale), state.scale)
    cooldown_count = jnp.where(reduce, cooldown, jnp.maximum(state.cooldown_count - 1, 0))
    return ReduceOnPlateauState(
      scale=scale.astype(jnp.float32),
      best_value=best,
      plateau_count=jnp.where(reduce, 0, plateau).astype(jnp.int32),
      cooldown_count=cooldown_count.astype(jnp.int32),
      num_reductions=(state.num_reductions + reduce).astype(jnp.int32),
    )

  def update_fn(updates, state, params=None, *, value, observe=True, **extra_args):
    del params, extra_args
    observed = observe_value(state, value)
    state = jax.tree.map(lambda new, old: jnp.where(observe, new, old), observed, state)
    updates = jax.tree.map(lambda u: (state.scale * u).astype(jnp.result_type(u)), updates)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
