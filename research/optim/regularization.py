"""Weight decay (L2 and L1 penalties, decoupled decay) and skipping non-finite steps.

The student notes: "weight decay multiplies every parameter by some w < 1 after each step,
which is the same as adding (1 - w)/2 |theta|^2 to the loss". Precisely: with plain gradient
descent, the L2 penalty alpha/2 |X|^2 gives X <- X - eta (g + alpha X) = (1 - eta alpha) X - eta g,
and decoupled decay at rate r gives X <- (1 - r) X - eta g; the two coincide when r = eta alpha.
With momentum or adaptive rules they differ (Loshchilov and Hutter, "Decoupled weight decay
regularization", ICLR 2019).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax.transforms import _adding as _optax_adding

from research.optim import base

# State of `add_l2_penalty`, `add_l1_penalty` and of a constant `decoupled_weight_decay`.
PenaltyState = optax.EmptyState


class _WeightDecaySchedule(NamedTuple):
  """State of `weight_decay_term` with a scheduled rate (optax's name and fields)."""

  count: jax.Array  # () int32: steps taken, the argument given to the schedule.


# optax does not export this type; its own class is used when its module has it (the same
# tree structure as optax's `add_decayed_weights` state), ours otherwise.
WeightDecaySchedule = getattr(_optax_adding, "WeightDecaySchedule", _WeightDecaySchedule)


def _needs_params(name: str, params):
  if params is None:
    raise ValueError(
      f"{name} needs the parameters; call tx.update(grads, state, params) with "
      "params, got params=None."
    )


def _add_penalty_gradient(name: str, penalty_grad) -> optax.GradientTransformation:
  """g <- g + penalty_grad(X) leaf by leaf, in g's dtype; stateless, needs the params."""

  def init_fn(params):
    del params
    return PenaltyState()

  def update_fn(updates, state, params=None):
    _needs_params(name, params)
    updates = jax.tree.map(
      lambda g, p: (g + penalty_grad(p)).astype(jnp.result_type(g)), updates, params
    )
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def weight_decay_term(
  weight_decay: base.ScalarOrSchedule = 0.0, mask=None
) -> optax.GradientTransformation:
  """g <- g + wd_k X (the L2 penalty's gradient), where `mask` is True; the first stage of
  `adadelta` (optax's `add_decayed_weights`, with its state layout: `EmptyState`, a
  `WeightDecaySchedule(count)` for a schedule, inside `optax.MaskedState` with a mask).

  A constant 0 changes nothing and needs no params; any other rate needs them.

  Args:
    weight_decay: wd >= 0, a float or a schedule `step -> wd`.
    mask: None (everywhere), or a tree of booleans like the params (or a prefix of it), or a
      function of the params returning one.

  Returns:
    An `optax.GradientTransformation`.
  """
  scheduled = callable(weight_decay)
  is_zero = isinstance(weight_decay, int | float) and weight_decay == 0.0

  def init_fn(params):
    del params
    return WeightDecaySchedule(count=jnp.zeros([], jnp.int32)) if scheduled else PenaltyState()

  def update_fn(updates, state, params=None):
    new_state = WeightDecaySchedule(base.safe_increment(state.count)) if scheduled else state
    if is_zero:
      return updates, new_state
    _needs_params("weight_decay", params)
    rate = base.value_at(weight_decay, state.count) if scheduled else weight_decay
    updates = jax.tree.map(lambda g, p: (g + rate * p).astype(jnp.result_type(g)), updates, params)
    return updates, new_state

  tx = optax.GradientTransformation(init_fn, update_fn)
  return tx if mask is None else optax.masked(tx, mask)


def add_l2_penalty(weight_decay: float) -> optax.GradientTransformation:
  """g <- g + alpha X: the gradient of the penalty alpha/2 |X|^2 added to the loss.

  The notes write the L2 penalty as lambda R(W) with R(W) = sum_kl W_kl^2 (004 ~3090), whose
  gradient is 2 lambda W: their lambda is alpha / 2 here (`add_l2_penalty(2 * lam)`).

  Put it before the rule (`optax.chain(add_l2_penalty(a), heavy_ball(lr))`) so that the rule
  sees the penalized gradient.

  Args:
    weight_decay: alpha >= 0.

  Returns:
    An `optax.GradientTransformation` with an empty `PenaltyState`.
  """
  return _add_penalty_gradient("add_l2_penalty", lambda p: weight_decay * p)


def add_l1_penalty(weight_decay: float) -> optax.GradientTransformation:
  """g <- g + alpha sign(X): a subgradient of the lasso penalty alpha |X|_1 (0 at X = 0).

  Args:
    weight_decay: alpha >= 0.

  Returns:
    An `optax.GradientTransformation` with an empty `PenaltyState`.
  """
  return _add_penalty_gradient("add_l1_penalty", lambda p: weight_decay * jnp.sign(p))


def decoupled_weight_decay(rate: base.ScalarOrSchedule) -> optax.GradientTransformation:
  """u <- u - r X, so that after `apply_updates` X <- (1 - r) X + u: parameters shrink by the
  factor w = 1 - r each step, whatever the learning rate of the rule producing u.

  Put it after the rule: `optax.chain(adam(lr), decoupled_weight_decay(r))` (AdamW-style).
  A schedule for r is evaluated at the number of steps taken.

  Args:
    rate: r in [0, 1), a float or a schedule.

  Returns:
    An `optax.GradientTransformation`; state `EmptyState()` for a constant rate,
    `ScaleByScheduleState(count)` for a schedule.
  """
  scheduled = callable(rate)

  def init_fn(params):
    del params
    if scheduled:
      return base.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))
    return PenaltyState()

  def update_fn(updates, state, params=None):
    _needs_params("decoupled_weight_decay", params)
    r = base.value_at(rate, state.count) if scheduled else rate
    updates = jax.tree.map(lambda u, p: (u - r * p).astype(jnp.result_type(u)), updates, params)
    if scheduled:
      state = base.ScaleByScheduleState(count=base.safe_increment(state.count))
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


class SkipNonfiniteState(NamedTuple):
  """State of `skip_nonfinite`."""

  inner_state: optax.OptState  # the wrapped transformation's state, untouched on skipped steps.
  num_skipped: jax.Array  # () int32: steps skipped so far.
  last_skipped: jax.Array  # () bool: whether the latest step was skipped.


def all_finite(tree) -> jax.Array:
  """True when no leaf of `tree` holds a NaN or an infinity."""
  checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


def skip_nonfinite(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """Runs `inner`, but a step whose gradients hold NaN or Inf returns zero updates and keeps
  the inner state as it was; the skip is counted in the state and training goes on.

  Args:
    inner: the transformation to protect (e.g. `optax.chain(clip_by_global_norm(1), adam(lr))`).

  Returns:
    An `optax.GradientTransformationExtraArgs` with state `SkipNonfiniteState`; extra keyword
    arguments are passed on to `inner`.
  """
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return SkipNonfiniteState(
      inner_state=inner.init(params),
      num_skipped=jnp.zeros([], jnp.int32),
      last_skipped=jnp.asarray(False),
    )

  def update_fn(updates, state, params=None, **extra_args):
    finite = all_finite(updates)
    new_updates, new_inner = inner.update(updates, state.inner_state, params, **extra_args)
    new_updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), new_updates)
    new_inner = jax.tree.map(
      lambda new, old: jnp.where(finite, new, old), new_inner, state.inner_state
    )
    skipped = jnp.logical_not(finite)
    num_skipped = jnp.where(skipped, base.safe_increment(state.num_skipped), state.num_skipped)
    return new_updates, SkipNonfiniteState(new_inner, num_skipped, skipped)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
