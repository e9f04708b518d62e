"""Gradient descent and momentum: sgd, Polyak's heavy ball, Sutskever's Nesterov momentum.

The lecture's forms (notes 1.5.1, 1.5.2):
  heavy ball:  dX^k = beta dX^{k-1} - eta g(X^k),       X^{k+1} = X^k + dX^k
  Nesterov:    X^{k+1} = X^k - eta g(X^k + beta (X^k - X^{k-1})) + beta (X^k - X^{k-1})
Two spellings of each, with the same iterates for a constant learning rate:
  * `sgd(eta, momentum=beta, nesterov=...)`, optax's signature and state (`trace`):
    m <- g + beta m, u = -eta m (or -eta (g + beta m)); eta sits outside the velocity.
  * `heavy_ball(eta, beta)`, `nesterov(eta, beta)`, the lecture's: scale by -eta first, then
    accumulate, so the velocity holds steps (eta inside the sum) exactly as written above, also
    when eta follows a schedule (then the two spellings differ).
"""

from typing import NamedTuple

import jax
import optax

from research.optim import base, layout

TraceState = optax.TraceState  # trace: like params (dtype: accumulator_dtype or the params')


def _velocity_leaf(decay, nesterov: bool, dampening: bool = False):
  """v <- decay v + s u (s = 1 - decay with dampening, else 1); returns (u + decay v or v, v)."""

  def leaf(u, v):
    scale = (1.0 - decay) if dampening else 1.0
    new_v = scale * u + decay * v
    out = u + decay * new_v if nesterov else new_v
    return out.astype(u.dtype), new_v.astype(v.dtype)

  return leaf


def trace(decay, nesterov: bool = False, accumulator_dtype=None) -> optax.GradientTransformation:
  """A trace of past updates: v <- u + decay v; returns v (or u + decay v with `nesterov`).

  Args:
    decay: the momentum coefficient.
    nesterov: return u + decay v (Nesterov's form) instead of v.
    accumulator_dtype: the dtype of v; None for the parameters' dtype.

  Returns:
    An `optax.GradientTransformation` with state `optax.TraceState(trace)`.
  """
  dtype = base.canonical_dtype(accumulator_dtype)

  def init_fn(params):
    return TraceState(trace=base.zeros_state(params, dtype))

  def update_fn(updates, state, params=None):
    del params
    updates, new_trace = base.map_leaves(_velocity_leaf(decay, nesterov), 2, updates, state.trace)
    return updates, TraceState(trace=new_trace)

  return optax.GradientTransformation(init_fn, update_fn)


def sgd(
  learning_rate: base.ScalarOrSchedule,
  momentum=None,
  nesterov: bool = False,
  accumulator_dtype=None,
) -> optax.GradientTransformationExtraArgs:
  """Gradient descent X <- X - eta g, with momentum m <- g + beta m when `momentum` is given.

  Without momentum the lecture's plain gradient descent. With `momentum=beta`:
      m^k = g^k + beta m^{k-1},   X^{k+1} = X^k - eta m^k                (heavy ball),
      X^{k+1} = X^k - eta (g^k + beta m^k)                  (`nesterov=True`, Sutskever's),
  which are the lecture's heavy-ball and Nesterov iterates for a constant eta (for Nesterov the
  parameters held are the look-ahead points; see `scale_by_nesterov`). Differences from the
  lecture's form: eta multiplies the velocity instead of entering it, which matters only when
  eta changes between steps; `heavy_ball` and `nesterov` keep eta inside. Signature, defaults
  and state layout are optax's.

  Args:
    learning_rate: eta, a float or a schedule `step -> eta`.
    momentum: beta, or None for no velocity.
    nesterov: Nesterov's form of momentum.
    accumulator_dtype: the dtype of the velocity; None for the parameters' dtype.

  Returns:
    An `optax.GradientTransformationExtraArgs`; state `(TraceState or EmptyState, EmptyState
    or ScaleByScheduleState)`.

  Reference: Sutskever et al., "On the importance of initialization and momentum in deep
  learning", ICML 2013.
  """
  velocity = (
    trace(momentum, nesterov, accumulator_dtype) if momentum is not None else base.identity()
  )
  return optax.chain(velocity, base.scale_by_learning_rate(learning_rate))


class HeavyBallState(NamedTuple):
  """State of `scale_by_heavy_ball`."""

  trace: optax.Params  # like params (dtype: accumulator_dtype or the params'): the velocity.


def scale_by_heavy_ball(
  beta: float = 0.9, *, dampening: bool = False, accumulator_dtype=None
) -> optax.GradientTransformation:
  """Accumulates a velocity: v <- beta v + u (or beta v + (1 - beta) u); returns v.

  Fed with u = -eta g this is the lecture's dX^k = beta dX^{k-1} - eta g^k; with
  `dampening=True` it is the slides' v = mu v + (1 - mu) g (to be scaled by -eta afterwards).

  Args:
    beta: the momentum coefficient (0.5, 0.9, 0.99 are usual); 0 gives back u.
    dampening: scale the incoming update by (1 - beta), the slides' exponential average.
    accumulator_dtype: the dtype of v; None for the parameters' dtype.

  Returns:
    An `optax.GradientTransformation` with state `HeavyBallState`.
  """
  dtype = base.canonical_dtype(accumulator_dtype)

  def init_fn(params):
    return HeavyBallState(trace=base.zeros_state(params, dtype))

  def update_fn(updates, state, params=None):
    del params
    leaf = _velocity_leaf(beta, nesterov=False, dampening=dampening)
    updates, velocity = base.map_leaves(leaf, 2, updates, state.trace)
    return updates, HeavyBallState(trace=velocity)

  return optax.GradientTransformation(init_fn, update_fn)


def heavy_ball(
  learning_rate: base.ScalarOrSchedule,
  beta: float = 0.9,
  *,
  dampening: bool = False,
  accumulator_dtype=None,
) -> optax.GradientTransformationExtraArgs:
  """Polyak's heavy-ball method (lecture 1.5.1).

  dX^k = beta dX^{k-1} - eta_k g^k,  X^{k+1} = X^k + dX^k,
  i.e. X^{k+1} = X^k - eta g^k + beta (X^k - X^{k-1}).
  With `dampening=True` the slides' form: v = beta v + (1 - beta) g, X <- X - eta v
  (the same path as `dampening=False` with eta replaced by eta (1 - beta)).

  Equals `sgd(learning_rate, momentum=beta)` (and optax's) for a constant learning rate; those
  keep eta outside the velocity, which differs only when eta changes between steps.

  Args:
    learning_rate: eta, a float or a schedule.
    beta: the momentum coefficient.
    dampening: use the slides' exponential-average velocity.
    accumulator_dtype: the dtype of the velocity; None for the parameters' dtype.

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Reference: Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
  """
  velocity = scale_by_heavy_ball(beta, dampening=dampening, accumulator_dtype=accumulator_dtype)
  if dampening:
    return optax.chain(velocity, base.scale_by_learning_rate(learning_rate))
  return optax.chain(base.scale_by_learning_rate(learning_rate), velocity)


class NesterovState(NamedTuple):
  """State of `scale_by_nesterov`."""

  trace: optax.Params  # like params (dtype: accumulator_dtype or the params'): the velocity dX.


def scale_by_nesterov(beta: float = 0.9, *, accumulator_dtype=None) -> optax.GradientTransformation:
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
    accumulator_dtype: the dtype of v; None for the parameters' dtype.

  Returns:
    An `optax.GradientTransformation` with state `NesterovState`.
  """
  dtype = base.canonical_dtype(accumulator_dtype)

  def init_fn(params):
    return NesterovState(trace=base.zeros_state(params, dtype))

  def update_fn(updates, state, params=None):
    del params
    updates, velocity = base.map_leaves(
      _velocity_leaf(beta, nesterov=True), 2, updates, state.trace
    )
    return updates, NesterovState(trace=velocity)

  return optax.GradientTransformation(init_fn, update_fn)


def nesterov(
  learning_rate: base.ScalarOrSchedule, beta: float = 0.9, *, accumulator_dtype=None
) -> optax.GradientTransformationExtraArgs:
  """Sutskever's Nesterov accelerated gradient (lecture 1.5.2).

  X^{k+1} = X^k - eta g(X^k + beta (X^k - X^{k-1})) + beta (X^k - X^{k-1}).
  The parameters held are the look-ahead points Y^k = X^k + beta (X^k - X^{k-1}); see
  `scale_by_nesterov` for the mapping. Equals `sgd(lr, momentum=beta, nesterov=True)` (and
  optax's) for a constant learning rate.

  Args:
    learning_rate: eta, a float or a schedule.
    beta: the momentum coefficient.
    accumulator_dtype: the dtype of the velocity; None for the parameters' dtype.

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Reference: Sutskever et al., "On the importance of initialization and momentum in deep
  learning", ICML 2013.
  """
  return optax.chain(
    base.scale_by_learning_rate(learning_rate),
    scale_by_nesterov(beta, accumulator_dtype=accumulator_dtype),
  )


def nesterov_position(
  params, opt_state, beta: float = 0.9, max_leaf_size: int | None = layout.PACK_MAX_LEAF_SIZE
):
  """X^k = Y^k - beta v^k: the lecture's iterate from the held look-ahead point Y^k.

  Args:
    params: the held parameters Y^k.
    opt_state: the state of `nesterov` or `scale_by_nesterov`, also inside `pack_small_leaves`
      or `flatten_leaves`.
    beta: the momentum coefficient used.
    max_leaf_size: for a packed state, the wrapper's `max_leaf_size` (None for
      `flatten_leaves`).

  Returns:
    X^k, a tree like `params`.
  """
  found = [
    s
    for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, NesterovState))
    if isinstance(s, NesterovState)
  ]
  if len(found) != 1:
    raise ValueError(
      f"nesterov_position needs a state holding one NesterovState, found "
      f"{len(found)}; pass the state of research.optim.nesterov."
    )
  velocity = found[0].trace
  if layout.is_packed(velocity):
    velocity = layout.unpack_tree(velocity, params, max_leaf_size)
  return jax.tree.map(lambda y, v: (y - beta * v).astype(y.dtype), params, velocity)
