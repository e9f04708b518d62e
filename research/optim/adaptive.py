"""Per-coordinate adaptive rules: AdaGrad, RMSProp, AdaDelta, Adam (lecture 2.3).

Each `scale_by_*` holds the rule's arithmetic on raw gradients; the alias of the same name
chains it with the learning rate. All squares and divisions are element-wise; G, M, E are
accumulators kept in `base.state_dtype` (float32 for bfloat16 parameters).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from research.optim import base
from research.optim.momentum import scale_by_heavy_ball, scale_by_nesterov


class AdagradState(NamedTuple):
  """State of `scale_by_adagrad`."""
  sum_of_squares: optax.Params  # like params, dtype base.state_dtype: G = sum_k (g^k)^2.


def scale_by_adagrad(eps: float = 1e-8, initial_accumulator_value: float = 0.0
                     ) -> optax.GradientTransformation:
  """G <- G + g^2; returns g / sqrt(G + eps).

  Args:
    eps: added inside the square root (the lecture's placement).
    initial_accumulator_value: G^0 (0 in the lecture; optax's adagrad uses 0.1).

  Returns:
    An `optax.GradientTransformation` with state `AdagradState`.
  """

  def init_fn(params):
    return AdagradState(sum_of_squares=base.full_state(params, initial_accumulator_value))

  def update_fn(updates, state, params=None):
    del params

    def leaf(g, s):
      gs = g.astype(s.dtype)
      s = s + gs * gs
      return (gs * jax.lax.rsqrt(s + eps)).astype(g.dtype), s

    updates, sums = base.map_leaves(leaf, 2, updates, state.sum_of_squares)
    return updates, AdagradState(sum_of_squares=sums)

  return optax.GradientTransformation(init_fn, update_fn)


def adagrad(learning_rate: base.ScalarOrSchedule = 0.01, eps: float = 1e-8, *,
            pack_small_leaves: bool = True) -> optax.GradientTransformation:
  """AdaGrad (lecture 2.3.1): G^k = G^{k-1} + (g^k)^2, X^{k+1} = X^k - eta g^k / sqrt(G^k + eps).

  Defaults eta = 0.01, eps = 1e-8 are the lecture's. `optax.adagrad(lr,
  initial_accumulator_value=0.0, eps=eps)` computes the same steps.

  Args:
    learning_rate: eta, a float or a schedule.
    eps: added inside the square root.
    pack_small_leaves: keep the state of small leaves in one vector (`base.pack_small_leaves`:
      same updates, far fewer loops for trees of many small arrays).

  Returns:
    An `optax.GradientTransformation`.

  Reference: Duchi, Hazan, Singer, "Adaptive subgradient methods", JMLR 2011.
  """
  return base.maybe_pack(
      optax.chain(scale_by_adagrad(eps), base.scale_by_learning_rate(learning_rate)),
      pack_small_leaves)


class RMSPropState(NamedTuple):
  """State of `scale_by_rmsprop`."""
  nu: optax.Params  # like params, dtype base.state_dtype: G, the average of g^2.
  mu: optax.Params  # like params (centered=True), else an empty tuple: the average of g.


def scale_by_rmsprop(decay: float = 0.9, eps: float = 1e-8, *, eps_in_sqrt: bool = True,
                     centered: bool = False) -> optax.GradientTransformation:
  """G <- gamma G + (1 - gamma) g^2; returns g / sqrt(G + eps) (or g / (sqrt(G) + eps)).

  `centered=True` also tracks M <- gamma M + (1 - gamma) g and divides by the estimated
  standard deviation sqrt(G - M^2 + eps) (Graves, 2013).

  Args:
    decay: gamma, the averaging coefficient.
    eps: the stabilizing constant.
    eps_in_sqrt: eps inside the root (the notes' form) or outside (the slides' form).
    centered: subtract the squared mean of the gradients.

  Returns:
    An `optax.GradientTransformation` with state `RMSPropState`.
  """

  def denominator(second_moment):
    if eps_in_sqrt:
      return jnp.sqrt(second_moment + eps)
    return jnp.sqrt(second_moment) + eps

  def init_fn(params):
    mu = base.zeros_state(params) if centered else ()
    return RMSPropState(nu=base.zeros_state(params), mu=mu)

  def update_fn(updates, state, params=None):
    del params
    if centered:
      def leaf(g, n, m):
        gs = g.astype(n.dtype)
        n = decay * n + (1.0 - decay) * gs * gs
        m = decay * m + (1.0 - decay) * gs
        return (gs / denominator(n - m * m)).astype(g.dtype), n, m

      updates, nu, mu = base.map_leaves(leaf, 3, updates, state.nu, state.mu)
      return updates, RMSPropState(nu=nu, mu=mu)

    def leaf(g, n):
      gs = g.astype(n.dtype)
      n = decay * n + (1.0 - decay) * gs * gs
      return (gs / denominator(n)).astype(g.dtype), n

    updates, nu = base.map_leaves(leaf, 2, updates, state.nu)
    return updates, RMSPropState(nu=nu, mu=())

  return optax.GradientTransformation(init_fn, update_fn)


def rmsprop(learning_rate: base.ScalarOrSchedule = 0.01, decay: float = 0.9,
            eps: float = 1e-8, *, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: float | None = None, nesterov: bool = False,
            pack_small_leaves: bool = True) -> optax.GradientTransformation:
  """RMSProp (lecture 2.3.2): G^k = gamma G^{k-1} + (1 - gamma) (g^k)^2,
  X^{k+1} = X^k - eta g^k / sqrt(G^k + eps).

  `eps_in_sqrt=False` gives the slides' form X <- X - eta g / (sqrt(G) + eps).
  With `momentum=alpha` (Goodfellow et al., algorithm 8.6 / 8.7 with Nesterov):
      v <- alpha v - eta g / sqrt(G + eps),  X <- X + v;
  with `nesterov=True` the gradient is taken at the look-ahead X + alpha v, handled like
  `research.optim.nesterov` (the held parameters are the look-ahead points).
  Matches `optax.rmsprop` with the same arguments for a constant learning rate.

  Args:
    learning_rate: eta, a float or a schedule.
    decay: gamma.
    eps: the stabilizing constant.
    eps_in_sqrt: where eps goes (see above).
    centered: divide by the estimated standard deviation instead of the root mean square.
    momentum: alpha, or None for no velocity.
    nesterov: Nesterov momentum (needs `momentum`).
    pack_small_leaves: keep the state of small leaves in one vector (`base.pack_small_leaves`:
      same updates, far fewer loops for trees of many small arrays).

  Returns:
    An `optax.GradientTransformation`.

  Reference: Tieleman and Hinton, Coursera lecture 6.5, 2012.
  """
  if nesterov and momentum is None:
    raise ValueError("rmsprop(nesterov=True) needs a momentum coefficient, got momentum=None; "
                     "pass momentum=0.9 for example.")
  parts = [scale_by_rmsprop(decay, eps, eps_in_sqrt=eps_in_sqrt, centered=centered),
           base.scale_by_learning_rate(learning_rate)]
  if momentum is not None:
    parts.append(scale_by_nesterov(momentum) if nesterov else scale_by_heavy_ball(momentum))
  return base.maybe_pack(optax.chain(*parts), pack_small_leaves)


class AdadeltaState(NamedTuple):
  """State of `scale_by_adadelta`."""
  e_g: optax.Params  # like params, dtype base.state_dtype: E[g^2], the average squared gradient.
  e_x: optax.Params  # like params, dtype base.state_dtype: E[dx^2], the average squared step.


def scale_by_adadelta(rho: float = 0.95, eps: float = 1e-6) -> optax.GradientTransformation:
  """E[g^2] <- rho E[g^2] + (1 - rho) g^2;  dx = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g;
  E[dx^2] <- rho E[dx^2] + (1 - rho) dx^2; returns dx (to be scaled by -eta).

  Args:
    rho: the averaging coefficient (the lecture's gamma).
    eps: added inside both roots.

  Returns:
    An `optax.GradientTransformation` with state `AdadeltaState`.
  """

  def init_fn(params):
    return AdadeltaState(e_g=base.zeros_state(params), e_x=base.zeros_state(params))

  def update_fn(updates, state, params=None):
    del params

    def leaf(g, eg, ex):
      gs = g.astype(eg.dtype)
      eg = rho * eg + (1.0 - rho) * gs * gs
      dx = jnp.sqrt(ex + eps) / jnp.sqrt(eg + eps) * gs
      ex = rho * ex + (1.0 - rho) * dx * dx
      return dx.astype(g.dtype), eg, ex

    updates, e_g, e_x = base.map_leaves(leaf, 3, updates, state.e_g, state.e_x)
    return updates, AdadeltaState(e_g=e_g, e_x=e_x)

  return optax.GradientTransformation(init_fn, update_fn)


def adadelta(learning_rate: base.ScalarOrSchedule = 1.0, rho: float = 0.95, eps: float = 1e-6,
             *, pack_small_leaves: bool = True) -> optax.GradientTransformation:
  """AdaDelta (lecture 2.3.3), no learning rate needed:
  X^{k+1} = X^k - sqrt(E[dX^2]^{k-1} + eps) / sqrt(G^k + eps) g^k.

  `learning_rate` (default 1, Zeiler's form) scales the step after E[dx^2] was updated with the
  unscaled step, as `optax.adadelta` does, which this matches.

  Args:
    learning_rate: a float or a schedule multiplying the step.
    rho: the averaging coefficient.
    eps: added inside both roots.
    pack_small_leaves: keep the state of small leaves in one vector (`base.pack_small_leaves`:
      same updates, far fewer loops for trees of many small arrays).

  Returns:
    An `optax.GradientTransformation`.

  Reference: Zeiler, "ADADELTA: an adaptive learning rate method", 2012.
  """
  return base.maybe_pack(
      optax.chain(scale_by_adadelta(rho, eps), base.scale_by_learning_rate(learning_rate)),
      pack_small_leaves)


class AdamState(NamedTuple):
  """State of `scale_by_adam`."""
  count: jax.Array  # () int32: steps taken, for the bias corrections.
  mu: optax.Params  # like params, dtype base.state_dtype: M, the first moment.
  nu: optax.Params  # like params, dtype base.state_dtype: G, the second moment.


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, eps_root: float = 0.0
                  ) -> optax.GradientTransformation:
  """M <- b1 M + (1 - b1) g;  G <- b2 G + (1 - b2) g^2;
  returns M_hat / (sqrt(G_hat + eps_root) + eps), M_hat = M / (1 - b1^k), G_hat = G / (1 - b2^k).

  Args:
    b1: delta, the first-moment coefficient.
    b2: gamma, the second-moment coefficient.
    eps: added outside the root.
    eps_root: added inside the root.

  Returns:
    An `optax.GradientTransformation` with state `AdamState`.
  """

  def init_fn(params):
    return AdamState(count=jnp.zeros([], jnp.int32), mu=base.zeros_state(params),
                     nu=base.zeros_state(params))

  def update_fn(updates, state, params=None):
    del params
    count = base.safe_increment(state.count)

    def leaf(g, m, n):
      k = count.astype(m.dtype)
      gs = g.astype(m.dtype)
      m = b1 * m + (1.0 - b1) * gs
      n = b2 * n + (1.0 - b2) * gs * gs
      m_hat = m / (1.0 - jnp.asarray(b1, m.dtype) ** k)
      n_hat = n / (1.0 - jnp.asarray(b2, n.dtype) ** k)
      return (m_hat / (jnp.sqrt(n_hat + eps_root) + eps)).astype(g.dtype), m, n

    updates, mu, nu = base.map_leaves(leaf, 3, updates, state.mu, state.nu)
    return updates, AdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)


def adam(learning_rate: base.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8, eps_root: float = 0.0, *, pack_small_leaves: bool = True
         ) -> optax.GradientTransformation:
  """Adam (lecture 2.3.4), bias-corrected moments:
  M^k = delta M^{k-1} + (1 - delta) g^k,  G^k = gamma G^{k-1} + (1 - gamma) (g^k)^2,
  X^{k+1} = X^k - eta M_hat^k / (sqrt(G_hat^k + eps_root) + eps).

  The lecture (and the slides) put epsilon inside the root: `eps=0, eps_root=epsilon`. The
  defaults follow the paper and `optax.adam` (eps outside), which this matches.

  Args:
    learning_rate: eta, a float or a schedule.
    b1: delta, the first-moment coefficient.
    b2: gamma, the second-moment coefficient.
    eps: added outside the root.
    eps_root: added inside the root.
    pack_small_leaves: keep the state of small leaves in one vector (`base.pack_small_leaves`:
      same updates, far fewer loops for trees of many small arrays).

  Returns:
    An `optax.GradientTransformation`.

  Reference: Kingma and Ba, "Adam: a method for stochastic optimization", ICLR 2015.
  """
  return base.maybe_pack(
      optax.chain(scale_by_adam(b1, b2, eps, eps_root), base.scale_by_learning_rate(learning_rate)),
      pack_small_leaves)
