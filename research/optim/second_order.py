"""Second-order steps (lecture 1.4; Goodfellow et al. 8.6.1): Newton's method with a damped
Hessian, and gradient descent preconditioned by a given matrix.

Both work on the flattened parameter vector x (all leaves raveled and concatenated, length n),
so they are meant for problems small enough to form an n x n matrix.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from research.optim import base


class NewtonState(NamedTuple):
  """State of `newton`."""

  count: jax.Array  # () int32: steps taken (the argument of a learning-rate schedule).


def newton(
  learning_rate: base.ScalarOrSchedule = 1.0, damping: float = 0.0
) -> optax.GradientTransformationExtraArgs:
  """The step -eta (H + alpha I)^{-1} g, H the Hessian of f at X (Goodfellow et al. eq. 8.27
  with the damping of 8.6.1; the lecture's X^{k+1} = X^k - eta Hessian^{-1} grad f).

  On a quadratic with positive-definite H, eta = 1 and alpha = 0 reach the minimum in one step.
  H is formed with `jax.hessian` of `value_fn` over the flattened parameters; the incoming
  updates are taken as the gradient g.

  Call `update(grads, state, params, value_fn=f)` (`value` and `grad` are accepted and unused).

  Args:
    learning_rate: eta, a float or a schedule.
    damping: alpha >= 0, added to the Hessian's diagonal (keeps the solve well posed where H
      is not positive definite).

  Returns:
    An `optax.GradientTransformationExtraArgs` with state `NewtonState`.
  """

  def init_fn(params):
    del params
    return NewtonState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, value_fn, **extra_args):
    del extra_args
    if params is None:
      raise ValueError("newton needs the parameters to form the Hessian; got params=None.")
    flat_params, unravel = ravel_pytree(params)
    flat_grad, unravel_grad = ravel_pytree(updates)
    hessian = jax.hessian(lambda x: value_fn(unravel(x)))(flat_params)
    hessian = hessian + damping * jnp.eye(flat_params.size, dtype=hessian.dtype)
    direction = jnp.linalg.solve(hessian, flat_grad.astype(hessian.dtype))
    eta = base.value_at(learning_rate, state.count)
    step = unravel_grad((-eta * direction).astype(flat_grad.dtype))
    return step, NewtonState(count=base.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def preconditioned_gd(
  learning_rate: base.ScalarOrSchedule, matrix: jax.Array
) -> optax.GradientTransformation:
  """X <- X - eta P g for a fixed n x n preconditioner P (flattened parameters, n entries).

  The lecture's change of variables X_hat = A^{1/2} X turns gradient descent on
  y = 1/2 X'AX + b'X into X^{k+1} = X^k - eta A^{-1} grad f(X^k): pass P = A^{-1}.

  Args:
    learning_rate: eta, a float or a schedule.
    matrix: P, shape (n, n), n the total number of parameter entries.

  Returns:
    An `optax.GradientTransformation`; state as `scale_by_learning_rate`'s.
  """
  matrix = jnp.asarray(matrix)
  if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
    raise ValueError(f"preconditioned_gd needs a square matrix, got shape {matrix.shape}.")
  scale = base.scale_by_learning_rate(learning_rate)

  def update_fn(updates, state, params=None):
    flat, unravel = ravel_pytree(updates)
    if flat.size != matrix.shape[0]:
      raise ValueError(
        f"preconditioned_gd got a {matrix.shape} matrix for {flat.size} parameter "
        f"entries; pass a ({flat.size}, {flat.size}) matrix."
      )
    preconditioned = unravel((matrix.astype(flat.dtype) @ flat).astype(flat.dtype))
    return scale.update(preconditioned, state, params)

  return optax.GradientTransformation(scale.init, update_fn)
