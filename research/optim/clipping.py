"""Gradient clipping (lecture 3.2: "if a gradient entry exceeds 5, set it to 5")."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class ClipState(NamedTuple):
  """State of `clip` and `clip_by_global_norm`: none is needed."""


def clip(max_delta: float) -> optax.GradientTransformation:
  """Clips every entry to [-max_delta, max_delta]: g_i <- min(max(g_i, -c), c).

  Args:
    max_delta: c > 0, the largest magnitude an entry may keep.

  Returns:
    An `optax.GradientTransformation` with an empty `ClipState`.
  """

  def init_fn(params):
    del params
    return ClipState()

  def update_fn(updates, state, params=None):
    del params
    updates = jax.tree.map(
        lambda g: jnp.clip(g, -max_delta, max_delta).astype(jnp.result_type(g)), updates)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


def global_norm(tree) -> jax.Array:
  """sqrt(sum over all leaves and entries of g^2), accumulated in float32 or wider."""
  squares = [jnp.sum(jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32))))
             for x in jax.tree.leaves(tree)]
  return jnp.sqrt(sum(squares)) if squares else jnp.zeros([], jnp.float32)


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
  """Rescales the whole gradient so its norm is at most c: g <- g * min(1, c / |g|).

  |g| is the Euclidean norm of all entries of all leaves together, so the direction is kept.

  Args:
    max_norm: c > 0.

  Returns:
    An `optax.GradientTransformation` with an empty `ClipState`.

  Reference: Pascanu, Mikolov, Bengio, "On the difficulty of training recurrent neural
  networks", ICML 2013.
  """

  def init_fn(params):
    del params
    return ClipState()

  def update_fn(updates, state, params=None):
    del params
    norm = global_norm(updates)
    factor = jnp.where(norm > max_norm, max_norm / jnp.where(norm > 0, norm, 1.0), 1.0)
    updates = jax.tree.map(lambda g: (g * factor).astype(jnp.result_type(g)), updates)
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)
