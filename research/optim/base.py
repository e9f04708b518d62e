"""Shared pieces of `research.optim`: learning-rate scaling, state dtypes, tree helpers.

State dtype policy (every rule in this package follows it):
  * Accumulators (momentum traces, first and second moments, sums of squares) are stored in
    `state_dtype(param.dtype)`: float32 for bfloat16 / float16 parameters, the parameter's own
    dtype otherwise (float32 stays float32, float64 stays float64). A bfloat16 sum (8 bits of
    mantissa) stops growing once it is about 256 times the added term, so AdaGrad's sum of
    squares would stall within a few hundred steps; low-precision parameters therefore get
    float32 accumulators, at 4 bytes per entry and accumulator instead of 2.
  * The arithmetic of a step runs in the accumulator dtype; the returned update is cast back to
    the gradient's dtype, so `optax.apply_updates` keeps the parameters' dtype.
  * With `pack_small_leaves` (the aliases' default), the accumulators of all small leaves form
    one vector in `state_dtype` of their common dtype (float32 when float32 and bfloat16 leaves
    mix; float64 if any small leaf is float64).
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

  Keeps a rule's arithmetic for one leaf on one screen, and computes shared subexpressions once.
  (XLA:CPU still emits one loop per output array: a step of adam reads the gradient in the loop
  for M, the loop for G and the loop updating X.)
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


# Leaves with at most this many entries are packed into one vector by the aliases' default
# `pack_small_leaves=True`. For such a leaf, a separate loop costs more than the copy into the
# vector. The value is not tuned: it packs ResNet-50's BatchNorm vectors and its 1x1
# convolutions up to 64x256, and leaves its larger kernels as they are.
PACK_MAX_LEAF_SIZE = 16384


def _packable(leaf, max_leaf_size: int) -> bool:
  return (int(jnp.size(leaf)) <= max_leaf_size
          and jnp.issubdtype(jnp.result_type(leaf), jnp.floating))


def pack_tree(tree, max_leaf_size: int = PACK_MAX_LEAF_SIZE) -> dict:
  """`{"packed": v, "large": [...]}`: the small floating leaves of `tree` raveled and
  concatenated in tree order into v (dtype `state_dtype` of their common dtype), the other
  leaves as they are, in tree order."""
  leaves = jax.tree.leaves(tree)
  small = [x for x in leaves if _packable(x, max_leaf_size)]
  large = [x for x in leaves if not _packable(x, max_leaf_size)]
  if not small:
    return {"packed": jnp.zeros([0], jnp.float32), "large": large}
  dtype = state_dtype(jnp.result_type(*small))
  return {"packed": jnp.concatenate([jnp.ravel(x).astype(dtype) for x in small]),
          "large": large}


def unpack_tree(packed: dict, like, max_leaf_size: int = PACK_MAX_LEAF_SIZE):
  """The inverse of `pack_tree`: a tree shaped and typed like `like`."""
  leaves, treedef = jax.tree.flatten(like)
  out, offset, large = [], 0, iter(packed["large"])
  for x in leaves:
    if _packable(x, max_leaf_size):
      size = int(jnp.size(x))
      piece = jax.lax.slice_in_dim(packed["packed"], offset, offset + size)
      out.append(piece.reshape(jnp.shape(x)).astype(jnp.result_type(x)))
      offset += size
    else:
      out.append(next(large))
  return treedef.unflatten(out)


def pack_small_leaves(inner: optax.GradientTransformation,
                      max_leaf_size: int = PACK_MAX_LEAF_SIZE
                      ) -> optax.GradientTransformationExtraArgs:
  """Runs `inner` on one concatenated vector of all small leaves (and on the large ones as
  they are), so that a tree of thousands of small arrays costs a few fused loops per step
  instead of a few per leaf.

  The inner transformation sees `pack_tree(tree)` = `{"packed": v, "large": [large leaves]}`
  and its state keeps that layout (one vector per accumulator for all small leaves, in
  `state_dtype` of their common dtype). Rules acting entry by entry give the same updates as
  without packing; so do global-norm clipping and other rules over all entries. (For bfloat16
  leaves packing is slightly more precise: a chain's intermediate updates stay in float32
  instead of being rounded to bfloat16 between stages.) Not meant for parameters sharded
  across devices (packing would gather them).

  Args:
    inner: the transformation to run (any of this package's rules, or a chain of them).
    max_leaf_size: floating leaves with at most this many entries are packed.

  Returns:
    An `optax.GradientTransformationExtraArgs`; extra arguments are passed on to `inner`.
  """
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return inner.init(pack_tree(params, max_leaf_size))

  def update_fn(updates, state, params=None, **extra_args):
    packed_params = None if params is None else pack_tree(params, max_leaf_size)
    new_updates, state = inner.update(pack_tree(updates, max_leaf_size), state, packed_params,
                                      **extra_args)
    return unpack_tree(new_updates, updates, max_leaf_size), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def maybe_pack(inner: optax.GradientTransformation, pack: bool
               ) -> optax.GradientTransformation:
  """`pack_small_leaves(inner)` when `pack`, else `inner` (the aliases' switch)."""
  return pack_small_leaves(inner) if pack else inner
