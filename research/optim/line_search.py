"""Backtracking line search with the Armijo condition (lecture 1.2).

Start from a large eta and shrink it until
    f(X - eta d) <= f(X) - c eta <grad f(X), d>,
which for the gradient direction d = g is the lecture's f(X - eta g) <= f(X) - c eta |g|^2
(c is the lecture's gamma in (0, 1/2]).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from research.optim import base


class ArmijoState(NamedTuple):
  """State of `armijo`."""

  count: jax.Array  # () int32: steps taken (the argument of a learning-rate schedule).
  learning_rate: jax.Array  # () float32: the eta of the latest step (0 if none was accepted).
  # The search itself runs in the dtype of `value` (at least float32).
  num_backtracking: jax.Array  # () int32: how many times eta was shrunk in the latest step.
  accepted: jax.Array  # () bool: whether the latest step satisfied the Armijo condition.
  value: jax.Array  # () float32: f at the accepted point (f(X) itself when none was accepted).


def _vdot(a, b) -> jax.Array:
  products = [
    jnp.vdot(
      x.astype(jnp.promote_types(x.dtype, jnp.float32)),
      y.astype(jnp.promote_types(y.dtype, jnp.float32)),
    )
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  ]
  return sum(products) if products else jnp.zeros([], jnp.float32)


def armijo(
  learning_rate: base.ScalarOrSchedule,
  c: float = 1e-4,
  decrease_factor: float = 0.5,
  max_backtracking_steps: int = 30,
) -> optax.GradientTransformationExtraArgs:
  """Backtracking line search: the step -eta_j d with eta_j = eta decrease_factor^j for the
  smallest j = 0, 1, ... satisfying f(X - eta_j d) <= f(X) - c eta_j <g, d>.

  The incoming updates d are the search direction (the gradient when `armijo` is used alone);
  `grad` is the gradient of f at X for the slope. If no j <= max_backtracking_steps satisfies
  the condition, the step is zero and `state.accepted` is False: a step is taken only when it
  satisfies the condition.

  Call `update(updates, state, params, value=f(params), grad=g, value_fn=f)`.

  Args:
    learning_rate: the first eta tried, a float or a schedule.
    c: the sufficient-decrease constant, in (0, 1/2].
    decrease_factor: the shrink factor in (0, 1).
    max_backtracking_steps: the largest j tried.

  Returns:
    An `optax.GradientTransformationExtraArgs` with state `ArmijoState`.

  Reference: Armijo, "Minimization of functions having Lipschitz continuous first partial
  derivatives", Pacific J. Math., 1966.
  """
  if not 0.0 < decrease_factor < 1.0:
    raise ValueError(f"armijo needs 0 < decrease_factor < 1, got {decrease_factor}.")

  def init_fn(params):
    del params
    return ArmijoState(
      count=jnp.zeros([], jnp.int32),
      learning_rate=jnp.zeros([], jnp.float32),
      num_backtracking=jnp.zeros([], jnp.int32),
      accepted=jnp.asarray(False),
      value=jnp.asarray(jnp.inf, jnp.float32),
    )

  def update_fn(updates, state, params=None, *, value, grad, value_fn, **extra_args):
    del extra_args
    if params is None:
      raise ValueError("armijo needs the parameters to evaluate value_fn; got params=None.")
    value = jnp.asarray(value)
    dtype = jnp.promote_types(value.dtype, jnp.float32)  # float64 problems stay in float64
    value = value.astype(dtype)
    slope = _vdot(grad, updates).astype(dtype)

    def trial(eta):
      candidate = jax.tree.map(
        lambda p, d: (p - eta * d).astype(jnp.result_type(p)), params, updates
      )
      new_value = jnp.asarray(value_fn(candidate)).astype(dtype)
      return new_value, new_value <= value - c * eta * slope

    def cond(carry):
      j, _, _, ok = carry
      return jnp.logical_and(jnp.logical_not(ok), j < max_backtracking_steps)

    def body(carry):
      j, eta, _, _ = carry
      eta = eta * decrease_factor
      new_value, ok = trial(eta)
      return j + 1, eta, new_value, ok

    eta0 = base.value_at(learning_rate, state.count).astype(dtype)
    value0, ok0 = trial(eta0)
    j, eta, new_value, ok = jax.lax.while_loop(
      cond, body, (jnp.zeros([], jnp.int32), eta0, value0, ok0)
    )
    eta = jnp.where(ok, eta, 0.0)
    step = jax.tree.map(lambda d: (-eta * d).astype(jnp.result_type(d)), updates)
    return step, ArmijoState(
      count=base.safe_increment(state.count),
      learning_rate=eta.astype(jnp.float32),
      num_backtracking=j,
      accepted=ok,
      value=jnp.where(ok, new_value, value).astype(jnp.float32),
    )

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
