"""Shared pieces of `research.optim`: learning-rate scaling, state creation, dtype helpers.

State layout policy (every rule follows it, so that optax's state tools walk our states):
  * A rule sharing a name with optax returns optax's state layout: the same NamedTuple types
    (`optax.ScaleByAdamState`, `optax.TraceState`, ...; types optax does not export are
    defined here with optax's names and fields), in the same chain positions, `optax.EmptyState`
    where optax keeps no state, and a `count` only where optax keeps one.
  * Accumulators are created from the parameters with `zeros_like` / `full_like`, so they take
    each parameter's shape, dtype and sharding (also for `jax.ShapeDtypeStruct` parameters under
    `jax.eval_shape`, and for the placeholders `optax.tree.map_params` passes to `init`).
  * Accumulators are kept in the parameter's dtype (as in optax) unless a rule's `mu_dtype` /
    `accumulator_dtype` says otherwise; the arithmetic of a step runs in the promoted dtype of
    gradient and accumulator, the new state is cast back to the state's dtype, and the returned
    update is cast to the gradient's dtype, so `optax.apply_updates` keeps the parameters' dtype.
    (For bfloat16 parameters a bfloat16 sum of squares stalls after a few hundred steps; pass
    float32 parameters, or `mu_dtype=jnp.float32` where a rule has it, when that matters.)
  * Complex entries: squares are |g|^2 = g conj(g) (`abs_sq`), so a complex parameter follows
    the same path as the pair (real part, imaginary part).
  * Step counters are int32 scalars that saturate instead of overflowing.
"""

import jax
import jax.numpy as jnp
import optax

# The same objects as optax's, so that annotations checked by optax's tools match.
Schedule = optax.Schedule
ScalarOrSchedule = optax.ScalarOrSchedule
EmptyState = optax.EmptyState
ScaleByScheduleState = optax.ScaleByScheduleState  # count: () int32, steps taken


def canonical_dtype(dtype) -> jnp.dtype | None:
  """`dtype` as JAX stores it (float64 -> float32 without x64), or None for None."""
  return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def zeros_state(params, dtype=None) -> optax.Params:
  """Zeros like each leaf of `params` (shape, sharding; dtype unless `dtype` is given)."""
  dtype = canonical_dtype(dtype)
  return jax.tree.map(lambda p: jnp.zeros_like(p, dtype=dtype), params)


def full_state(params, value, dtype=None) -> optax.Params:
  """Like `zeros_state`, filled with `value`."""
  dtype = canonical_dtype(dtype)
  return jax.tree.map(lambda p: jnp.full_like(p, value, dtype=dtype), params)


def abs_sq(x: jax.Array) -> jax.Array:
  """|x|^2 = x conj(x), real: x * x for real x, re^2 + im^2 for complex x."""
  if jnp.iscomplexobj(x):
    return jnp.real(x) ** 2 + jnp.imag(x) ** 2
  return x * x


def wide_real_dtype(dtype) -> jnp.dtype:
  """The real dtype of at least 32 bits in which scalars such as 1 - b^k are computed."""
  real = jnp.finfo(jnp.dtype(dtype)).dtype if jnp.issubdtype(dtype, jnp.inexact) else jnp.float32
  return jnp.promote_types(real, jnp.float32)


def bias_correction(decay, count: jax.Array, dtype) -> jax.Array:
  """1 - decay^count, computed in `wide_real_dtype(dtype)` and cast to the real part of `dtype`
  (in bfloat16 directly, 1 - 0.999^1 would round to 0)."""
  wide = wide_real_dtype(dtype)
  factor = 1.0 - jnp.asarray(decay, wide) ** count.astype(wide)
  real = jnp.finfo(jnp.dtype(dtype)).dtype if jnp.issubdtype(dtype, jnp.inexact) else wide
  return factor.astype(real)


def safe_increment(count: jax.Array) -> jax.Array:
  """count + 1 for an int32 counter, staying at the int32 maximum instead of wrapping."""
  limit = jnp.iinfo(jnp.int32).max
  return jnp.where(count < limit, count + 1, limit).astype(jnp.int32)


def map_leaves(fn, num_outputs: int, *trees):
  """Maps `fn(*leaves) -> tuple of num_outputs arrays` over trees; returns a tuple of trees.

  Keeps a rule's arithmetic for one leaf on one screen, and computes shared subexpressions once.
  Leaves of the first tree (the updates) may be Python scalars; they are made arrays first.
  """
  treedef = jax.tree.structure(trees[0])
  leaves = [treedef.flatten_up_to(t) for t in trees]
  results = [fn(jnp.asarray(first), *rest) for first, *rest in zip(*leaves, strict=True)]
  if not results:
    return tuple(treedef.unflatten([]) for _ in range(num_outputs))
  return tuple(treedef.unflatten([r[i] for r in results]) for i in range(num_outputs))


def value_at(hyperparameter: ScalarOrSchedule, count: jax.Array) -> jax.Array:
  """The value of a constant or scheduled hyperparameter at step `count`."""
  if callable(hyperparameter):
    return jnp.asarray(hyperparameter(count))
  return jnp.asarray(hyperparameter)


def identity() -> optax.GradientTransformation:
  """Returns the updates unchanged; state `EmptyState()` (optax's place holder in a chain)."""

  def init_fn(params):
    del params
    return EmptyState()

  def update_fn(updates, state, params=None):
    del params
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def _scale_tree(updates, factor):
  return jax.tree.map(lambda u: (factor * jnp.asarray(u)).astype(jnp.result_type(u)), updates)


def scale_by_learning_rate(
  learning_rate: ScalarOrSchedule | None = None, *, flip_sign: bool = True
) -> optax.GradientTransformation:
  """Multiplies updates by -eta_k (or +eta_k with `flip_sign=False`).

  eta_k = learning_rate(k) for a schedule (k = 0, 1, ... counts calls; state
  `ScaleByScheduleState(count)`), the constant otherwise (state `EmptyState()`, so a chain
  holds a `count` only where the schedule needs one, as in optax). None: no scaling at all.
  Updates keep their dtype.

  Args:
    learning_rate: a float, a scalar array (as `optax.inject_hyperparams` passes), a schedule
      `step -> learning rate`, or None.
    flip_sign: negate, so that the returned update descends.

  Returns:
    An `optax.GradientTransformation`.
  """
  if learning_rate is None:
    return identity()
  sign = -1.0 if flip_sign else 1.0
  if not callable(learning_rate):

    def update_constant(updates, state, params=None):
      del params
      return _scale_tree(updates, sign * jnp.asarray(learning_rate)), state

    return optax.GradientTransformation(lambda params: EmptyState(), update_constant)

  def init_fn(params):
    del params
    return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    eta = sign * value_at(learning_rate, state.count)
    return _scale_tree(updates, eta), ScaleByScheduleState(count=safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)
