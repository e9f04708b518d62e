"""Gradient clipping (lecture 3.2: "if a gradient entry exceeds 5, set it to 5")."""

import jax
import jax.numpy as jnp
import optax

from research.optim import base

# State of `clip` and `clip_by_global_norm`: none is needed (optax's `EmptyState`).
ClipState = optax.EmptyState


def clip(max_delta) -> optax.GradientTransformationExtraArgs:
  """Clips every entry to [-max_delta, max_delta]: g_i <- min(max(g_i, -c), c).

  Args:
    max_delta: c > 0, the largest magnitude an entry may keep.

  Returns:
    An `optax.GradientTransformationExtraArgs` with state `EmptyState()`.
  """

  def init_fn(params):
    del params
    return ClipState()

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    updates = jax.tree.map(
      lambda g: jnp.clip(g, -max_delta, max_delta).astype(jnp.result_type(g)), updates
    )
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _at_least_32_bits(x) -> jax.Array:
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.complex64 if jnp.iscomplexobj(x) else jnp.float32))


def global_norm(updates) -> jax.Array:
  """sqrt(sum over all leaves and entries of |g|^2), accumulated in float32 or wider."""
  squares = [jnp.sum(base.abs_sq(_at_least_32_bits(x))) for x in jax.tree.leaves(updates)]
  return jnp.sqrt(sum(squares)) if squares else jnp.zeros([], jnp.float32)


def clip_by_global_norm(max_norm) -> optax.GradientTransformationExtraArgs:
  """Rescales the whole gradient so its norm is at most c: g <- g * min(1, c / |g|).

  |g| is the Euclidean norm of all entries of all leaves together (`global_norm`), so the
  direction is kept.

  Args:
    max_norm: c > 0.

  Returns:
    An `optax.GradientTransformationExtraArgs` with state `EmptyState()`.

  Reference: Pascanu, Mikolov, Bengio, "On the difficulty of training recurrent neural
  networks", ICML 2013.
  """

  def init_fn(params):
    del params
    return ClipState()

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    norm = global_norm(updates)
    factor = jnp.where(norm > max_norm, max_norm / jnp.where(norm > 0, norm, 1.0), 1.0)
    updates = jax.tree.map(lambda g: (g * factor).astype(jnp.result_type(g)), updates)
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
