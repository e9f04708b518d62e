"""Per-coordinate adaptive rules: AdaGrad, RMSProp, AdaDelta, Adam (lecture 2.3).

Each `scale_by_*` holds the rule's arithmetic on raw gradients; the alias of the same name
chains it with the learning rate. Signatures, defaults and state layouts are optax's; each
docstring gives the lecture's form and the arguments that select it. All squares and divisions
are element-wise; a square is |g|^2 = g conj(g), so complex parameters work.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax._src import transform as _optax_transform

from research.optim import base
from research.optim.momentum import trace
from research.optim.regularization import weight_decay_term

# optax's state types (exported by optax), so that states are interchangeable with optax's.
ScaleByRssState = optax.ScaleByRssState  # sum_of_squares: like params, G = G0 + sum |g|^2
ScaleByRmsState = optax.ScaleByRmsState  # nu: like params, the average of |g|^2
ScaleByRStdDevState = optax.ScaleByRStdDevState  # mu: average of g; nu: average of |g|^2
ScaleByAdaDeltaState = optax.ScaleByAdaDeltaState  # e_g: E[|g|^2]; e_x: E[|dx|^2]
ScaleByAdamState = optax.ScaleByAdamState  # count: () int32; mu: M; nu: G, like params


class _ScaleByRmsWithCountState(NamedTuple):
  """State of `scale_by_rms(bias_correction=True)` (optax's name and fields)."""

  count: jax.Array  # () int32: steps taken, for the bias correction.
  nu: optax.Params  # like params: the average of |g|^2.


class _ScaleByRStdDevWithCountState(NamedTuple):
  """State of `scale_by_stddev(bias_correction=True)` (optax's name and fields)."""

  count: jax.Array  # () int32: steps taken, for the bias corrections.
  mu: optax.Params  # like params: the average of g.
  nu: optax.Params  # like params: the average of |g|^2.


# optax does not export these two types; its own classes are used when its module has them
# (so that our states have exactly the tree structure of optax's), ours otherwise.
ScaleByRmsWithCountState = getattr(
  _optax_transform, "ScaleByRmsWithCountState", _ScaleByRmsWithCountState
)
ScaleByRStdDevWithCountState = getattr(
  _optax_transform, "ScaleByRStdDevWithCountState", _ScaleByRStdDevWithCountState
)


def _moment(g, m, decay):
  """decay m + (1 - decay) g."""
  return decay * m + (1.0 - decay) * g


def _second_moment(g, n, decay):
  """decay n + (1 - decay) |g|^2 (for real g written as ... * g * g, the order of the
  lecture's reference implementation, so that earlier results are reproduced bit for bit)."""
  if jnp.iscomplexobj(g):
    return decay * n + (1.0 - decay) * base.abs_sq(g)
  return decay * n + (1.0 - decay) * g * g


def scale_by_adagrad(initial_accumulator_value=0.1, eps=1e-7) -> optax.GradientTransformation:
  """G <- G + |g|^2; returns g / sqrt(G + eps) (0 where G = 0).

  Args:
    initial_accumulator_value: G^0 (the lecture's is 0; optax's default 0.1).
    eps: added inside the square root (the lecture's placement).

  Returns:
    An `optax.GradientTransformation` with state `ScaleByRssState(sum_of_squares)`.
  """

  def init_fn(params):
    return ScaleByRssState(sum_of_squares=base.full_state(params, initial_accumulator_value))

  def update_fn(updates, state, params=None):
    del params

    def leaf(g, s):
      new_s = base.abs_sq(g) + s
      total = jnp.real(new_s)
      scaling = jnp.where(total > 0, jax.lax.rsqrt(total + eps), 0.0)
      return (scaling * g).astype(g.dtype), new_s.astype(s.dtype)

    updates, sums = base.map_leaves(leaf, 2, updates, state.sum_of_squares)
    return updates, ScaleByRssState(sum_of_squares=sums)

  return optax.GradientTransformation(init_fn, update_fn)


def adagrad(
  learning_rate: base.ScalarOrSchedule, initial_accumulator_value=0.1, eps=1e-7
) -> optax.GradientTransformationExtraArgs:
  """AdaGrad (lecture 2.3.1): G^k = G^{k-1} + (g^k)^2, X^{k+1} = X^k - eta g^k / sqrt(G^k + eps).

  The lecture starts from G^0 = 0 with eps = 1e-8: `adagrad(eta, initial_accumulator_value=0.0,
  eps=1e-8)`. The defaults (G^0 = 0.1, eps = 1e-7) and the signature are optax's.

  Args:
    learning_rate: eta, a float or a schedule.
    initial_accumulator_value: G^0.
    eps: added inside the square root.

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Reference: Duchi, Hazan, Singer, "Adaptive subgradient methods", JMLR 2011.
  """
  return optax.chain(
    scale_by_adagrad(initial_accumulator_value, eps), base.scale_by_learning_rate(learning_rate)
  )


def scale_by_rmsprop(
  decay=0.9,
  eps=1e-8,
  initial_scale=0.0,
  eps_in_sqrt: bool = True,
  bias_correction: bool = False,
  *,
  centered: bool = False,
  initial_from_gradient: bool = False,
) -> optax.GradientTransformation:
  """G <- gamma G + (1 - gamma) |g|^2; returns g / sqrt(G + eps) (or g / (sqrt(G) + eps)).

  `centered=True` also tracks M <- gamma M + (1 - gamma) g and divides by the estimated
  standard deviation sqrt(G - |M|^2 + eps) (Graves, 2013). `bias_correction=True` divides
  G (and M) by 1 - gamma^k first. `scale_by_rms` and `scale_by_stddev` are this rule with
  optax's names.

  `initial_from_gradient=True` starts the average the way notes 003 (~133-140) write RMSProp:
  sigma^0 = |g^0|, i.e. G^1 = |g^1|^2 at the first update (the notes print sigma^0 = g^0; the
  root mean square of one gradient is its magnitude), then G^k = gamma G^{k-1} + (1 - gamma)
  |g^k|^2. With eps outside the root the first step is then eta g / (|g| + eps), about eta
  sign(g) per coordinate, instead of eta g / sqrt(1 - gamma) |g| from G^0 = 0.

  Args:
    decay: gamma, the averaging coefficient.
    eps: the stabilizing constant.
    initial_scale: G^0 (0 in the lecture and in PyTorch, 1 in TF1).
    eps_in_sqrt: eps inside the root (the notes' form) or outside (the slides' form).
    bias_correction: correct the averages' bias towards G^0.
    centered: subtract the squared mean of the gradients.
    initial_from_gradient: G^1 = |g^1|^2 (sigma^0 = |g^0| in the notes' indexing) instead of
      gamma G^0 + (1 - gamma) |g^1|^2; not with `centered` or `bias_correction`, which both
      assume an average started from a constant.

  Returns:
    An `optax.GradientTransformation`; state `ScaleByRmsState(nu)`, `ScaleByRStdDevState(mu,
    nu)` when centered, their `...WithCountState` forms (with `count`) for bias correction and
    for `initial_from_gradient`.

  Raises:
    ValueError: `initial_from_gradient` with `centered` or `bias_correction`.
  """
  if initial_from_gradient and (centered or bias_correction):
    raise ValueError(
      "initial_from_gradient=True starts G from the first gradient; it cannot be combined "
      f"with centered={centered} or bias_correction={bias_correction}: set those to False"
    )
  counted = bias_correction or initial_from_gradient

  def denominator(second_moment):
    second_moment = jnp.real(second_moment)
    if eps_in_sqrt:
      return jnp.sqrt(second_moment + eps)
    return jnp.sqrt(second_moment) + eps

  def init_fn(params):
    nu = base.full_state(params, initial_scale)
    count = jnp.zeros([], jnp.int32)
    if centered:
      mu = base.zeros_state(params)
      if bias_correction:
        return ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
      return ScaleByRStdDevState(mu=mu, nu=nu)
    return ScaleByRmsWithCountState(count=count, nu=nu) if counted else ScaleByRmsState(nu)

  def update_fn(updates, state, params=None):
    del params
    count = base.safe_increment(state.count) if counted else None

    def corrected(x):
      return x / base.bias_correction(decay, count, x.dtype) if bias_correction else x

    if centered:

      def leaf(g, m, n):
        new_m, new_n = _moment(g, m, decay), _second_moment(g, n, decay)
        variance = corrected(new_n) - base.abs_sq(corrected(new_m))
        step = g / denominator(variance)
        return step.astype(g.dtype), new_m.astype(m.dtype), new_n.astype(n.dtype)

      updates, mu, nu = base.map_leaves(leaf, 3, updates, state.mu, state.nu)
      if bias_correction:
        return updates, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
      return updates, ScaleByRStdDevState(mu=mu, nu=nu)

    def leaf(g, n):
      new_n = _second_moment(g, n, decay)
      if initial_from_gradient:
        new_n = jnp.where(state.count == 0, base.abs_sq(g), new_n)
      return (g / denominator(corrected(new_n))).astype(g.dtype), new_n.astype(n.dtype)

    updates, nu = base.map_leaves(leaf, 2, updates, state.nu)
    if counted:
      return updates, ScaleByRmsWithCountState(count=count, nu=nu)
    return updates, ScaleByRmsState(nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_rms(
  decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True, bias_correction: bool = False
) -> optax.GradientTransformation:
  """`scale_by_rmsprop` (not centered) under optax's name and signature."""
  return scale_by_rmsprop(decay, eps, initial_scale, eps_in_sqrt, bias_correction)


def scale_by_stddev(
  decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt: bool = True, bias_correction: bool = False
) -> optax.GradientTransformation:
  """`scale_by_rmsprop(centered=True)` under optax's name and signature."""
  return scale_by_rmsprop(decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered=True)


def rmsprop(
  learning_rate: base.ScalarOrSchedule,
  decay=0.9,
  eps=1e-8,
  initial_scale=0.0,
  eps_in_sqrt: bool = True,
  centered: bool = False,
  momentum=None,
  nesterov: bool = False,
  bias_correction: bool = False,
  *,
  initial_from_gradient: bool = False,
) -> optax.GradientTransformationExtraArgs:
  """RMSProp (lecture 2.3.2): G^k = gamma G^{k-1} + (1 - gamma) (g^k)^2,
  X^{k+1} = X^k - eta g^k / sqrt(G^k + eps).

  That is the default (eps inside the root, G^0 = 0); `eps_in_sqrt=False` gives the slides'
  X <- X - eta g / (sqrt(G) + eps). With `momentum=alpha` (Goodfellow et al., algorithm 8.6,
  8.7 with `nesterov=True`): v <- alpha v - eta g / sqrt(G + eps), X <- X + v; with Nesterov the
  gradient is taken at the look-ahead X + alpha v, which is the point held (as in
  `research.optim.nesterov`). Signature, defaults and state layout are optax's; `nesterov`
  without `momentum` does nothing, as there.

  The defaults are optax's (gamma = 0.9, eps = 1e-8), not the slides' suggestion (notes 004
  ~2257, ~2357: rho = 0.999, delta = 1e-5 outside the root), which is
  `rmsprop(eta, decay=0.999, eps=1e-5, eps_in_sqrt=False)`. Notes 003 (~133-140) start the
  average at the first gradient, sigma^0 = |g^0|: `initial_from_gradient=True`.

  Args:
    learning_rate: eta, a float or a schedule.
    decay: gamma.
    eps: the stabilizing constant.
    initial_scale: G^0.
    eps_in_sqrt: where eps goes (see above).
    centered: divide by the estimated standard deviation instead of the root mean square.
    momentum: alpha, or None for no velocity.
    nesterov: Nesterov momentum.
    bias_correction: divide the averages by 1 - gamma^k.
    initial_from_gradient: G^1 = |g^1|^2, as notes 003 start it (see `scale_by_rmsprop`).

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Reference: Tieleman and Hinton, Coursera lecture 6.5, 2012.
  """
  velocity = trace(momentum, nesterov) if momentum is not None else base.identity()
  return optax.chain(
    scale_by_rmsprop(
      decay,
      eps,
      initial_scale,
      eps_in_sqrt,
      bias_correction,
      centered=centered,
      initial_from_gradient=initial_from_gradient,
    ),
    base.scale_by_learning_rate(learning_rate),
    velocity,
  )


def scale_by_adadelta(rho=0.9, eps=1e-6) -> optax.GradientTransformation:
  """E[g^2] <- rho E[g^2] + (1 - rho) |g|^2;  dx = sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) g;
  E[dx^2] <- rho E[dx^2] + (1 - rho) |dx|^2; returns dx (to be scaled by -eta).

  Args:
    rho: the averaging coefficient (the lecture's gamma, for which the notes give no value;
      0.95 in Zeiler's paper, optax's default 0.9).
    eps: added inside both roots.

  Returns:
    An `optax.GradientTransformation` with state `ScaleByAdaDeltaState(e_g, e_x)`.
  """

  def init_fn(params):
    return ScaleByAdaDeltaState(e_g=base.zeros_state(params), e_x=base.zeros_state(params))

  def update_fn(updates, state, params=None):
    del params

    def leaf(g, eg, ex):
      new_eg = _second_moment(g, eg, rho)
      dx = jnp.sqrt(jnp.real(ex) + eps) / jnp.sqrt(jnp.real(new_eg) + eps) * g
      new_ex = _second_moment(dx, ex, rho)
      return dx.astype(g.dtype), new_eg.astype(eg.dtype), new_ex.astype(ex.dtype)

    updates, e_g, e_x = base.map_leaves(leaf, 3, updates, state.e_g, state.e_x)
    return updates, ScaleByAdaDeltaState(e_g=e_g, e_x=e_x)

  return optax.GradientTransformation(init_fn, update_fn)


def adadelta(
  learning_rate: base.ScalarOrSchedule | None = None,
  rho=0.9,
  eps=1e-6,
  weight_decay: base.ScalarOrSchedule = 0.0,
  weight_decay_mask=None,
) -> optax.GradientTransformationExtraArgs:
  """AdaDelta (lecture 2.3.3), no learning rate needed:
  X^{k+1} = X^k - sqrt(E[dX^2]^{k-1} + eps) / sqrt(G^k + eps) g^k.

  Zeiler's paper uses `adadelta(rho=0.95)` (eps = 1e-6, no learning rate); the notes (000
  ~403-420) give the update but no value of gamma.
  A `learning_rate` scales the step after E[dx^2] was updated with the unscaled step, as in
  optax. `weight_decay` adds wd X to the gradient first (only where `weight_decay_mask`, a
  tree of booleans or a function of the params returning one, is True). Signature, defaults
  and state layout are optax's, with one difference: `learning_rate=None` (the default) takes
  the step -dx itself, where optax 0.2.8 returns +dx unscaled (an ascent step; its own test
  skips the convergence check for this case).

  Args:
    learning_rate: None for the step -dx, or a float or schedule multiplying it.
    rho: the averaging coefficient.
    eps: added inside both roots.
    weight_decay: wd >= 0, a float or a schedule.
    weight_decay_mask: where the decay applies (None: everywhere).

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Reference: Zeiler, "ADADELTA: an adaptive learning rate method", 2012.
  """
  return optax.chain(
    weight_decay_term(weight_decay, weight_decay_mask),
    scale_by_adadelta(rho, eps),
    base.scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
  )


def scale_by_adam(
  b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov: bool = False
) -> optax.GradientTransformation:
  """M <- b1 M + (1 - b1) g;  G <- b2 G + (1 - b2) |g|^2;
  returns M_hat / (sqrt(G_hat + eps_root) + eps), M_hat = M / (1 - b1^k), G_hat = G / (1 - b2^k).

  With `nesterov=True` (NAdam, Dozat 2016): M_hat = b1 M / (1 - b1^(k+1)) + (1 - b1) g / (1 - b1^k).

  Args:
    b1: delta, the first-moment coefficient.
    b2: gamma, the second-moment coefficient.
    eps: added outside the root.
    eps_root: added inside the root.
    mu_dtype: the dtype of M; None for the parameters' dtype.
    nesterov: Nesterov's form of the first moment.

  Returns:
    An `optax.GradientTransformation` with state `ScaleByAdamState(count, mu, nu)`.
  """
  mu_dtype = base.canonical_dtype(mu_dtype)

  def init_fn(params):
    return ScaleByAdamState(
      count=jnp.zeros([], jnp.int32),
      mu=base.zeros_state(params, mu_dtype),
      nu=base.zeros_state(params),
    )

  def update_fn(updates, state, params=None):
    del params
    count = base.safe_increment(state.count)

    def leaf(g, m, n):
      new_m, new_n = _moment(g, m, b1), _second_moment(g, n, b2)
      if nesterov:
        m_hat = b1 * new_m / base.bias_correction(b1, base.safe_increment(count), new_m.dtype) + (
          1.0 - b1
        ) * g / base.bias_correction(b1, count, g.dtype)
      else:
        m_hat = new_m / base.bias_correction(b1, count, new_m.dtype)
      n_hat = jnp.real(new_n) / base.bias_correction(b2, count, new_n.dtype)
      step = m_hat / (jnp.sqrt(n_hat + eps_root) + eps)
      return step.astype(g.dtype), new_m.astype(m.dtype), new_n.astype(n.dtype)

    updates, mu, nu = base.map_leaves(leaf, 3, updates, state.mu, state.nu)
    return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

  return optax.GradientTransformation(init_fn, update_fn)


def adam(
  learning_rate: base.ScalarOrSchedule,
  b1=0.9,
  b2=0.999,
  eps=1e-8,
  eps_root=0.0,
  mu_dtype=None,
  *,
  nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
  """Adam (lecture 2.3.4), bias-corrected moments:
  M^k = delta M^{k-1} + (1 - delta) g^k,  G^k = gamma G^{k-1} + (1 - gamma) (g^k)^2,
  X^{k+1} = X^k - eta M_hat^k / (sqrt(G_hat^k + eps_root) + eps).

  The lecture (and the slides) put epsilon inside the root: `adam(eta, eps=0.0,
  eps_root=epsilon)`; the slides' suggested values (notes 004 ~2400-2414: mu = 0.9, rho =
  0.999, delta = 1e-5) make `adam(eta, b1=0.9, b2=0.999, eps=0.0, eps_root=1e-5)`. The defaults
  follow the paper and optax (eps = 1e-8 outside); signature and state layout are optax's.

  Args:
    learning_rate: eta, a float or a schedule.
    b1: delta, the first-moment coefficient.
    b2: gamma, the second-moment coefficient.
    eps: added outside the root.
    eps_root: added inside the root.
    mu_dtype: the dtype of M; None for the parameters' dtype.
    nesterov: NAdam's first moment (see `scale_by_adam`).

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Reference: Kingma and Ba, "Adam: a method for stochastic optimization", ICLR 2015.
  """
  return optax.chain(
    scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
    base.scale_by_learning_rate(learning_rate),
  )


class DeltaBarDeltaState(NamedTuple):
  """State of `scale_by_delta_bar_delta`."""

  rates: optax.Params  # like params: each coordinate's own learning rate eps_i
  trace: optax.Params  # like params: delta-bar, the exponential average of past gradients


def scale_by_delta_bar_delta(
  initial_rate: float, increase: float, decrease: float = 0.1, theta: float = 0.7
) -> optax.GradientTransformation:
  """Delta-bar-delta (notes 002 ~224; Jacobs 1988): one learning rate per coordinate, raised
  while the coordinate's derivative keeps its sign and cut when the sign flips.

  With g = dJ/dw at step k and delta-bar the average of the earlier gradients,

      eps_i <- eps_i + increase            if delta-bar_i g_i > 0   (the sign held)
      eps_i <- (1 - decrease) eps_i        if delta-bar_i g_i < 0   (the sign flipped)
      eps_i unchanged                      otherwise (the first step: delta-bar = 0)
      delta-bar_i <- (1 - theta) g_i + theta delta-bar_i

  and the returned update is eps_i g_i (the new rate, per coordinate; to be negated). The rates
  grow additively and shrink geometrically, so a run of agreeing signs speeds a coordinate up
  slowly and a single oscillation slows it down at once. The notes say the rule suits full-batch
  optimization only: a mini-batch gradient's sign flips from noise, which drives every rate down.

  Args:
    initial_rate: eps^0, every coordinate's starting learning rate.
    increase: kappa, added to a rate while its derivative's sign holds.
    decrease: phi in (0, 1], the fraction of a rate removed when its sign flips.
    theta: the averaging coefficient of delta-bar in [0, 1).

  Returns:
    An `optax.GradientTransformation` with state `DeltaBarDeltaState(rates, trace)`.

  Raises:
    ValueError: `decrease` outside (0, 1], `theta` outside [0, 1), or a negative `increase` or
      `initial_rate`.
  """
  if not 0.0 < decrease <= 1.0 or not 0.0 <= theta < 1.0 or increase < 0 or initial_rate < 0:
    raise ValueError(
      f"delta-bar-delta needs 0 < decrease <= 1, 0 <= theta < 1, increase >= 0 and "
      f"initial_rate >= 0; got decrease={decrease}, theta={theta}, increase={increase}, "
      f"initial_rate={initial_rate}"
    )

  def init_fn(params):
    return DeltaBarDeltaState(
      rates=base.full_state(params, initial_rate), trace=base.zeros_state(params)
    )

  def update_fn(updates, state, params=None):
    del params

    def leaf(g, rate, bar):
      agreement = jnp.real(jnp.conj(bar) * g)
      new_rate = jnp.where(
        agreement > 0, rate + increase, jnp.where(agreement < 0, (1.0 - decrease) * rate, rate)
      )
      new_bar = (1.0 - theta) * g + theta * bar
      return (new_rate * g).astype(g.dtype), new_rate.astype(rate.dtype), new_bar.astype(bar.dtype)

    updates, rates, trace = base.map_leaves(leaf, 3, updates, state.rates, state.trace)
    return updates, DeltaBarDeltaState(rates=rates, trace=trace)

  return optax.GradientTransformation(init_fn, update_fn)


def delta_bar_delta(
  learning_rate: float, increase: float, decrease: float = 0.1, theta: float = 0.7
) -> optax.GradientTransformationExtraArgs:
  """Delta-bar-delta (notes 002 ~224): X^{k+1} = X^k - eps^k * g^k with one rate per coordinate
  adapted by the sign agreement of successive gradients (`scale_by_delta_bar_delta`).

  The notes give the idea (raise a rate while its derivative's sign holds, lower it when the
  sign changes; full batch only) and no values; the rule's form is Jacobs' (additive increase,
  geometric decrease, sign taken against an average of earlier gradients), and the defaults of
  `decrease` and `theta` are ours. optax has no such rule.

  Args:
    learning_rate: eps^0, the starting rate of every coordinate (a float: the rule is its own
      schedule).
    increase: kappa, added to a rate per agreeing step.
    decrease: phi, the fraction removed per sign change.
    theta: the averaging coefficient of delta-bar.

  Returns:
    An `optax.GradientTransformationExtraArgs`.

  Reference: R. A. Jacobs, "Increased rates of convergence through learning rate adaptation",
  Neural Networks 1(4), 1988.
  """
  return optax.chain(
    scale_by_delta_bar_delta(learning_rate, increase, decrease, theta),
    base.scale_by_learning_rate(1.0),
  )
