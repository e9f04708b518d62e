"""Shared pieces of `research.optim`: learning-rate scaling, state dtypes, tree helpers.

State dtype policy (every rule in this package follows it):
  * Accumulators (momentum traces, first and second moments, sums of squares) are stored in
    `state_dtype(param.dtype)`: float32 for bfloat16 / float16 parameters, the parameter's own
    dtype otherwise (float32 stays float32, float64 stays float64). Summing squared gradients in
    bfloat16 (8 bits of mantissa) stalls after a few hundred steps, so low-precision parameters
    get float32 accumulators; this costs 4 bytes per parameter and moment instead of 2.
  * The arithmetic of a step runs in the accumulator dtype; the returned update is cast back to
    the gradient's dtype, so `optax.apply_updates` keeps the parameters' dtype.
  * Step counters are int32 scalars that saturate instead of overflowing.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = float | jax.Array | Schedule


def state_dtype(dtype) -> jnp.dtype:
  """The dtype in which accumulators for parameters of `dtype` are kept (see module doc)."""
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
    return jnp.dtype(jnp.float32)
  return dtype


def zeros_state(params) -> optax.Params:
  """A tree of zeros shaped like `params`, each leaf in `state_dtype(leaf.dtype)`."""
  return jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), state_dtype(jnp.result_type(p))), params)


def full_state(params, value: float) -> optax.Params:
  """Like `zeros_state`, filled with `value`."""
  return jax.tree.map(
      lambda p: jnp.full(jnp.shape(p), value, state_dtype(jnp.result_type(p))), params)


def safe_increment(count: jax.Array) -> jax.Array:
  """count + 1 for an int32 counter, staying at the int32 maximum instead of wrapping."""
  limit = jnp.iinfo(jnp.int32).max
  return jnp.where(count < limit, count + 1, limit).astype(jnp.int32)


def map_leaves(fn, num_outputs: int, *trees):
  """Maps `fn(*leaves) -> tuple of num_outputs arrays` over trees; returns a tuple of trees.

  Computing every output of a rule in one function per leaf (rather than one `tree.map` per
  output) keeps the whole step for a leaf in a single fused loop under `jit`.
  """
  treedef = jax.tree.structure(trees[0])
  leaves = [treedef.flatten_up_to(t) for t in trees]
  results = [fn(*args) for args in zip(*leaves, strict=True)]
  if not results:
    return tuple(treedef.unflatten([]) for _ in range(num_outputs))
  return tuple(treedef.unflatten([r[i] for r in results]) for i in range(num_outputs))


def value_at(hyperparameter: ScalarOrSchedule, count: jax.Array) -> jax.Array:
  """The value of a constant or scheduled hyperparameter at step `count`."""
  if callable(hyperparameter):
    return jnp.asarray(hyperparameter(count))
  return jnp.asarray(hyperparameter)


class ScaleByLearningRateState(NamedTuple):
  """State of `scale_by_learning_rate`."""
  count: jax.Array  # () int32: steps taken, the argument given to a schedule.


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> optax.GradientTransformation:
  """Multiplies updates by -eta_k (or +eta_k with `flip_sign=False`).

  eta_k = learning_rate(k) for a schedule (k = 0, 1, ... counts calls), the constant otherwise.

  Args:
    learning_rate: a float, a scalar array (as `optax.inject_hyperparams` passes) or a schedule
      `step -> learning rate`.
    flip_sign: negate, so that the returned update descends.

  Returns:
    An `optax.GradientTransformation` with state `ScaleByLearningRateState`.
  """
  sign = -1.0 if flip_sign else 1.0

  def init_fn(params):
    del params
    return ScaleByLearningRateState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    eta = sign * value_at(learning_rate, state.count)
    updates = jax.tree.map(lambda u: (eta * u).astype(jnp.result_type(u)), updates)
    return updates, ScaleByLearningRateState(count=safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)
