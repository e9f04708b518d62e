"""Gradient descent and momentum: sgd, Polyak's heavy ball, Sutskever's Nesterov momentum.

The lecture's forms (notes 1.5.1, 1.5.2):
  heavy ball:  dX^k = beta dX^{k-1} - eta g(X^k),       X^{k+1} = X^k + dX^k
  Nesterov:    X^{k+1} = X^k - eta g(X^k + beta (X^k - X^{k-1})) + beta (X^k - X^{k-1})
The aliases scale by -eta first and accumulate afterwards, so the velocity holds steps
(eta inside the sum) exactly as written above, also when eta follows a schedule.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from research.optim import base


def sgd(learning_rate: base.ScalarOrSchedule) -> optax.GradientTransformation:
  """Plain gradient descent: X <- X - eta g.

  Args:
    learning_rate: eta, a float or a schedule `step -> eta`.

  Returns:
    An `optax.GradientTransformation` (state: `ScaleByLearningRateState`).
  """
  return base.scale_by_learning_rate(learning_rate)


class HeavyBallState(NamedTuple):
  """State of `scale_by_heavy_ball`."""
  trace: optax.Params  # like params, dtype base.state_dtype(param dtype): the velocity.


def scale_by_heavy_ball(beta: float = 0.9, *, dampening: bool = False
                        ) -> optax.GradientTransformation:
  """Accumulates a velocity: v <- beta v + u (or beta v + (1 - beta) u); returns v.

  Fed with u = -eta g this is the lecture's dX^k = beta dX^{k-1} - eta g^k; with
  `dampening=True` it is the slides' v = mu v + (1 - mu) g (to be scaled by -eta afterwards).

  Args:
    beta: the momentum coefficient (0.5, 0.9, 0.99 are usual); 0 gives back u.
    dampening: scale the incoming update by (1 - beta), the slides' exponential average.

  Returns:
    An `optax.GradientTransformation` with state `HeavyBallState`.
  """

  def init_fn(params):
    return HeavyBallState(trace=base.zeros_state(params))

  def update_fn(updates, state, params=None):
    del params

    def leaf(u, v):
      scale = (1.0 - beta) if dampening else 1.0
      v = (beta * v + scale * u).astype(v.dtype)
      return v.astype(u.dtype), v

    updates, trace = base.map_leaves(leaf, 2, updates, state.trace)
    return updates, HeavyBallState(trace=trace)

  return optax.GradientTransformation(init_fn, update_fn)


def heavy_ball(learning_rate: base.ScalarOrSchedule, beta: float = 0.9, *,
               dampening: bool = False, pack_small_leaves: bool = True
               ) -> optax.GradientTransformation:
  """Polyak's heavy-ball method (lecture 1.5.1).

  dX^k = beta dX^{k-1} - eta_k g^k,  X^{k+1} = X^k + dX^k,
  i.e. X^{k+1} = X^k - eta g^k + beta (X^k - X^{k-1}).
  With `dampening=True` the slides' form: v = beta v + (1 - beta) g, X <- X - eta v
  (the same path as `dampening=False` with eta replaced by eta (1 - beta)).

  Equals `optax.sgd(learning_rate, momentum=beta)` for a constant learning rate (optax keeps
  eta outside the velocity, which differs only when eta changes between steps).

  Args:
    learning_rate: eta, a float or a schedule.
    beta: the momentum coefficient.
    dampening: use the slides' exponential-average velocity.
    pack_small_leaves: keep the state of small leaves in one vector (`base.pack_small_leaves`:
      same updates, far fewer loops for trees of many small arrays).

  Returns:
    An `optax.GradientTransformation`.

  Reference: Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
  """
  if dampening:
    tx = optax.chain(scale_by_heavy_ball(beta, dampening=True),
                     base.scale_by_learning_rate(learning_rate))
  else:
    tx = optax.chain(base.scale_by_learning_rate(learning_rate), scale_by_heavy_ball(beta))
  return base.maybe_pack(tx, pack_small_leaves)


class NesterovState(NamedTuple):
  """State of `scale_by_nesterov`."""
  trace: optax.Params  # like params, dtype base.state_dtype(param dtype): the velocity dX.


def scale_by_nesterov(beta: float = 0.9) -> optax.GradientTransformation:
  """Nesterov momentum on the look-ahead point: v <- beta v + u; returns u + beta v.

  Why the look-ahead point. The lecture's NAG evaluates the gradient at
  Y^k = X^k + beta (X^k - X^{k-1}), but a transformation only sees the gradient at the
  parameters it is applied to. So the parameters held by the optimizer are Y^k, not X^k.
  With v^{k+1} = X^{k+1} - X^k = beta v^k - eta g(Y^k) (u = -eta g(Y^k)):
      Y^{k+1} - Y^k = (1 + beta) v^{k+1} - beta v^k = u + beta v^{k+1}.
  Both sequences start at the same point (v^0 = 0), and X^k = Y^k - beta v^k can be recovered
  from the state at any time (`nesterov_position`).

  Args:
    beta: the momentum coefficient.

  Returns:
    An `optax.GradientTransformation` with state `NesterovState`.
  """

  def init_fn(params):
    return NesterovState(trace=base.zeros_state(params))

  def update_fn(updates, state, params=None):
    del params

    def leaf(u, v):
      v = (beta * v + u).astype(v.dtype)
      return (u + beta * v).astype(u.dtype), v

    updates, trace = base.map_leaves(leaf, 2, updates, state.trace)
    return updates, NesterovState(trace=trace)

  return optax.GradientTransformation(init_fn, update_fn)


def nesterov(learning_rate: base.ScalarOrSchedule, beta: float = 0.9, *,
             pack_small_leaves: bool = True) -> optax.GradientTransformation:
  """Sutskever's Nesterov accelerated gradient (lecture 1.5.2).

  X^{k+1} = X^k - eta g(X^k + beta (X^k - X^{k-1})) + beta (X^k - X^{k-1}).
  The parameters held are the look-ahead points Y^k = X^k + beta (X^k - X^{k-1}); see
  `scale_by_nesterov` for the mapping. Equals `optax.sgd(lr, momentum=beta, nesterov=True)` for
  a constant learning rate.

  Args:
    learning_rate: eta, a float or a schedule.
    beta: the momentum coefficient.
    pack_small_leaves: keep the state of small leaves in one vector (see `heavy_ball`).

  Returns:
    An `optax.GradientTransformation`.

  Reference: Sutskever et al., "On the importance of initialization and momentum in deep
  learning", ICML 2013.
  """
  return base.maybe_pack(
      optax.chain(base.scale_by_learning_rate(learning_rate), scale_by_nesterov(beta)),
      pack_small_leaves)


def nesterov_position(params, opt_state, beta: float = 0.9):
  """X^k = Y^k - beta v^k: the lecture's iterate from the held look-ahead point Y^k.

  Args:
    params: the held parameters Y^k.
    opt_state: the state of `nesterov` (packed or not) or of `scale_by_nesterov`.
    beta: the momentum coefficient used.

  Returns:
    X^k, a tree like `params`.
  """
  found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, NesterovState))
           if isinstance(s, NesterovState)]
  if len(found) != 1:
    raise ValueError(f"nesterov_position needs a state holding one NesterovState, found "
                     f"{len(found)}; pass the state of research.optim.nesterov.")
  trace = found[0].trace
  if isinstance(trace, dict) and set(trace) == {"packed", "large"}:
    trace = base.unpack_tree(trace, params)
  return jax.tree.map(lambda y, v: (y - beta * v).astype(jnp.result_type(y)), params, trace)
