"""Seven groups of the lecture's optimizer facts, each measured on our rules (`research.optim`).

1. SGD's rates (notes 000 ~347-348, 002 ~156): with decaying steps, E f(x_k) - f* = O(1/sqrt k)
   on a convex problem (eta_k = eta_0 / sqrt(k + 1)) and O(1/k) on a mu-strongly convex one
   (eta_k = 1 / (mu (k + L/mu))). Both problems are quadratics 1/2 sum_i lambda_i x_i^2 with
   Gaussian noise added to the gradient: the convex one is rank-deficient (half its lambda_i
   are 0, as in over-parametrized least squares: mu = 0), the strongly convex one has lambda_i
   in [mu, L]. On these smooth problems the gradient noise sets both rates: E f - f* follows
   the noise floor ~ eta_k sigma^2, so eta_k ~ 1/sqrt(k) gives the convex bound's
   1/sqrt(k) and eta_k ~ 1/(mu k) gives 1/k.
2. Momentum's terminal speed (notes 002 ~172-176): on a constant gradient g, heavy ball's step
   eta |g| (1 - alpha^k) / (1 - alpha) tends to eta |g| / (1 - alpha), 1/(1 - alpha) times GD's.
   2b. Raising alpha over training (notes 002 ~176: alpha starts small, 0.5, and grows to
   0.9 or 0.99, "but adjusting alpha matters less than shrinking epsilon"): on the noisy strongly
   convex quadratic of 1., heavy ball with alpha raised 0.5 -> 0.99 at a constant eta (a beta
   schedule through `optax.inject_hyperparams(research.optim.heavy_ball)`) stays on a noise
   floor that rises with eta / (1 - alpha), while alpha = 0.9 with a shrinking eta keeps falling.
3. Heavy ball need not converge (notes 000 ~278, 001 ~38): on f = L x^2 / 2 the iteration
   x_{k+1} = (1 + alpha - eta L) x_k - alpha x_{k-1} converges iff 0 < eta L < 2 (1 + alpha)
   (0 <= alpha < 1): the roots of z^2 - (1 + alpha - eta L) z + alpha lie in the unit disc.
4. AdaGrad's step decays too fast, RMSProp fixes it (notes 000 ~389, ~401): under persistent
   gradient noise AdaGrad's G_k grows like k, so eta / sqrt(G_k) falls like 1/sqrt(k); RMSProp's
   average of g^2 stays bounded, and so does its step. A target that moves late in the run
   shows the cost.
5. Adam's bias correction (notes 004 ~2553, "greatly relieves the cold start"): M and G start at
   0, so after one step M = (1 - b1) g and G = (1 - b2) g^2: both are too small, G by 1000x at
   b2 = 0.999. In M / sqrt(G) the second moment's bias wins: without correction the first step
   is (1 - b1) / sqrt(1 - b2) = 3.16x too large (with eps -> 0), and with the slides' delta =
   1e-5 inside the root and |g| << sqrt(delta / (1 - b2)) it is too small instead.
   "Adam without bias correction" is M / (sqrt(G) + eps) from our `scale_by_adam`'s own moments.
6. Convexity facts (notes 000 ~44-160) on a quadratic and on logistic regression
   (`problems.logistic_loss`, l2 > 0): the descent lemma, GD's bound k min_i |grad f(x_i)|^2 <=
   2 L (f(x_0) - f*) at eta = 1/L, strong convexity's forms at random pairs, backtracking
   (`research.optim.armijo`) steps checked against the Wolfe conditions, and the stopping rule
   |f^{k+1} - f^k| < eps (for a mu-strongly convex, L-smooth f it stops with f - f* < (L/mu) eps).
   Also L-smoothness's three equivalent forms (notes 000 ~128-130) and strong convexity's forms
   3-5 (~155-159), each as a ratio at the same random pairs.
7. Two more claims about momentum and AdaGrad:
   - momentum carries the iterate past a poor local minimum (notes 004 ~2155-2159): on the
     tilted double well f(x) = 0.1 x^4 - 0.5 x^2 - 0.3 x (local minimum near -1.40, global
     near 1.71), from x = -3, GD and heavy ball with a small alpha stop in the local minimum,
     heavy ball with alpha = 0.9 and Nesterov roll through it to the global one;
   - AdaGrad gives rarely updated coordinates larger steps (notes 000 ~387-388, GloVe's rare
     words): on a gradient stream where coordinate 0 gets g = 1 at every step and coordinate i
     only every P_i-th step, AdaGrad's step on a rare coordinate, when its gradient comes, is
     sqrt(P_i) times the common one's (G grows like k / P_i instead of k); SGD's is 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_close, check_greater, check_less
from research import optim

NAME = "optimizer_facts"
TITLE = (
  "Optimizer facts: SGD rates, momentum speed and divergence, AdaGrad vs RMSProp, Adam, convexity"
)
CAPTION = (
  "Top, left to right: SGD with decaying steps on noisy quadratics, E f - f* (seed average) with "
  "fitted slopes (lecture: O(1/sqrt k) convex, O(1/k) strongly convex); heavy ball's step on a "
  "constant gradient over GD's, tending to 1/(1 - alpha); heavy ball on f = L x^2/2, log10 "
  "|x_K / x_0| over (eta L, alpha) with the boundary eta L = 2 (1 + alpha); the descent lemma and "
  "strong convexity at random pairs (ratios <= 1 and >= 1). Bottom: AdaGrad's effective step "
  "eta / sqrt(G_k) falls like 1/sqrt(k), RMSProp's stays; their loss when the target moves late; "
  "Adam's first steps with and without bias correction; GD at eta = 1/L on logistic regression, "
  "k min |grad|^2 against 2 L (f_0 - f*), and where |f^{k+1} - f^k| < eps stops it. Right: "
  "GD, heavy ball and Nesterov on a tilted double well from x = -3 (momentum 0.9 rolls past the "
  "local minimum); AdaGrad's step on a coordinate updated every P steps, sqrt(P) times the "
  "every-step coordinate's."
)
PAPER = common.Paper(
  source="the lecture, notes 000 ~44-401, 001 ~38, 002 ~156-176, 004 ~2155, ~2553",
  setup=(
    "the lecture's statements about GD, SGD, heavy ball, AdaGrad, RMSProp and Adam on convex / "
    "strongly convex, L-smooth functions (no experiment of its own)"
  ),
  number=(
    "SGD: E f - f* = O(1/sqrt k) convex, O(1/k) strongly convex (eta_k ~ 1/k); momentum's "
    "terminal step eta |g| / (1 - alpha), 10x GD's at alpha = 0.9 (alpha = 0.5, 0.9, 0.99), alpha "
    "raised over training matters less than shrinking eta; heavy "
    "ball need not converge; AdaGrad's learning rate falls too fast, RMSProp fixes it; Adam's "
    "bias correction relieves the cold start; descent lemma, k min |grad f|^2 <= 2 L (f_0 - f*) "
    "at eta = 1/L, strong convexity's equivalent forms, Armijo / Wolfe line search, stopping "
    "when |f^{k+1} - f^k| < eps, L-smoothness's three equivalent forms; momentum carries past "
    "poor local minima (004 ~2155); AdaGrad keeps larger steps for rare coordinates (000 ~387)"
  ),
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  # 1. SGD rates
  c.sgd_steps = 20_000
  c.sgd_seeds = 64
  c.sgd_fit_from = 200  # fit slopes over k in [sgd_fit_from, sgd_steps]
  c.convex_dim = 40
  c.convex_flat = 20  # of them with lambda = 0: convex, not strongly convex
  c.convex_eta0 = 1.0
  c.strong_dim = 20
  c.strong_mu = 0.1
  c.sgd_noise = 1.0  # std of the noise added to each gradient coordinate
  # 2. momentum
  c.alphas = (0.5, 0.9, 0.99)
  c.momentum_eta = 0.01
  c.momentum_steps = 3000
  c.schedule_eta = 0.01  # 2b: heavy ball's eta for the alpha schedule vs the eta schedule
  # 3. heavy ball's convergence region
  c.hb_steps = 400
  c.hb_grid = 121  # grid points per axis of the (eta L, alpha) map
  c.hb_alpha = 0.9  # the run shown just inside / just outside
  c.hb_margin = 0.05  # relative distance of those runs from the boundary
  # 4. AdaGrad vs RMSProp
  c.ada_steps = 10_000
  c.ada_switch = 0.8  # the target moves at this fraction of the run
  c.ada_jump = 4.0  # by this much in every coordinate
  c.ada_dim = 8
  c.ada_seeds = 16
  c.ada_eta = 0.05
  c.rms_decay = 0.99
  # 5. Adam
  c.adam_eta = 1e-3
  c.adam_steps = 200
  # 6. convexity
  c.logistic_points = 500
  c.logistic_dim = 10
  c.logistic_l2 = 1e-2
  c.pairs = 2000
  c.gd_steps = 300
  c.stop_eps = (1e-4, 1e-6, 1e-8, 1e-10)
  c.armijo_eta0 = 50.0
  # 7. momentum past a poor local minimum; AdaGrad's rare coordinates
  c.well_start = -3.0
  c.well_eta = 0.05
  c.well_steps = 500
  c.rare_periods = (1, 10, 100)  # coordinate i gets a gradient every rare_periods[i] steps
  c.rare_steps = 10_000
  c.seed = 0
  return common.sized(
    size,
    c,
    test={
      "sgd_steps": 5000,
      "sgd_seeds": 32,
      "sgd_fit_from": 100,
      "hb_grid": 41,
      "ada_steps": 4000,
      "ada_seeds": 8,
      "pairs": 500,
      "gd_steps": 200,
      "stop_eps": (1e-4, 1e-6, 1e-8),
    },
    full={"sgd_steps": 100_000, "sgd_seeds": 256, "ada_steps": 40_000},
  )


# ----------------------------------------------------------- 7. local minimum, rare coordinates


def tilted_well(x: jax.Array) -> jax.Array:
  """f(x) = 0.1 x^4 - 0.5 x^2 - 0.3 x summed over coordinates: per coordinate a local minimum
  near -1.40 (f = -0.37) and the global one near 1.71 (f = -1.10)."""
  return jnp.sum(0.1 * x**4 - 0.5 * x**2 - 0.3 * x)


WELL_RULES = {
  "GD": lambda eta: optim.sgd(eta),
  "heavy ball 0.5": lambda eta: optim.heavy_ball(eta, 0.5),
  "heavy ball 0.9": lambda eta: optim.heavy_ball(eta, 0.9),
  "Nesterov 0.9": lambda eta: optim.nesterov(eta, 0.9),
}


def rare_steps(tx, periods, steps: int) -> np.ndarray:
  """|update_i| at the steps where coordinate i gets its gradient g_i = 1 (every periods[i]-th
  step, 0 otherwise), averaged over the second half of the run: (len(periods),)."""
  periods = jnp.asarray(periods)
  params = jnp.zeros(periods.shape)

  def step(state, k):
    g = (k % periods == 0).astype(params.dtype)
    u, state = tx.update(g, state, params)
    return state, (jnp.abs(u), g)

  _, (u, g) = jax.lax.scan(step, tx.init(params), jnp.arange(steps))
  half = steps // 2
  u, g = u[half:], g[half:]
  return np.asarray(jnp.sum(u * g, axis=0) / jnp.sum(g, axis=0))


# ------------------------------------------------------------- 2b. raising alpha vs shrinking eta


def momentum_schedule_runs(c) -> dict:
  """Seed-averaged f - f* of heavy ball on the strongly convex noisy quadratic of part 1, two
  ways of changing it over training (notes 002 ~176: alpha starts small and grows, but
  "adjusting alpha matters less than shrinking epsilon"):

  * alpha raised linearly from 0.5 to 0.99 over the first half, eta constant: through
    `optax.inject_hyperparams(research.optim.heavy_ball)` with an optax schedule for `beta`, the
    documented way to give any of our rules a scheduled hyperparameter;
  * alpha fixed at 0.9, eta shrunk as eta_0 k_0 / (k + k_0).
  """
  lam = jnp.asarray(problems.spectrum(c.strong_dim, c.strong_mu, 1.0))
  f = problems.quadratic(lam)
  noisy = lambda x, k: lam * x + c.sgd_noise * jax.random.normal(k, x.shape, x.dtype)
  half, k0 = c.sgd_steps // 2, c.sgd_steps // 20
  rules = {
    "alpha 0.5 -> 0.99, eta constant": optax.inject_hyperparams(optim.heavy_ball)(
      learning_rate=c.schedule_eta, beta=optax.linear_schedule(0.5, 0.99, half)
    ),
    "alpha 0.9, eta shrinking": optim.heavy_ball(lambda k: c.schedule_eta * k0 / (k + k0), 0.9),
  }
  keys = jax.random.split(jax.random.key(c.seed + 1), c.sgd_seeds)
  out = {}
  for name, tx in rules.items():
    one = lambda k, tx=tx: (
      U.optimize(tx, f, jnp.ones(lam.shape[0]), c.sgd_steps, grad_fn=noisy, key=k).values
    )
    out[name] = np.asarray(jax.jit(lambda ks, one=one: jnp.mean(jax.vmap(one)(ks), axis=0))(keys))
  return out


def quarter_ratio(values: np.ndarray) -> float:
  """mean f - f* over the last quarter of a run / over its second quarter (about 1: a plateau)."""
  n = (len(values) - 1) // 4
  return float(np.mean(values[-n:]) / np.mean(values[n : 2 * n]))


# ------------------------------------------------------------------------ 1. SGD's two rates


def sgd_rate_runs(c) -> dict:
  """Seed-averaged f(x_k) - f* of SGD on the convex and the strongly convex noisy quadratic."""
  active = problems.spectrum(c.convex_dim - c.convex_flat, c.strong_mu, 1.0)
  lam_c = jnp.asarray(np.concatenate([active, np.zeros(c.convex_flat)]))
  lam_s = jnp.asarray(problems.spectrum(c.strong_dim, c.strong_mu, 1.0))
  mu = c.strong_mu

  def run(lam, schedule, key):
    f = problems.quadratic(lam)
    noisy = lambda x, k: lam * x + c.sgd_noise * jax.random.normal(k, x.shape, x.dtype)
    keys = jax.random.split(key, c.sgd_seeds)
    one = lambda k: (
      U.optimize(
        optim.sgd(schedule), f, jnp.ones(lam.shape[0]), c.sgd_steps, grad_fn=noisy, key=k
      ).values
    )
    return jnp.mean(jax.vmap(one)(keys), axis=0)

  convex = lambda k: c.convex_eta0 / jnp.sqrt(k + 1.0)
  strong = lambda k: 1.0 / (mu * (k + 1.0 / mu))  # eta_0 = 1/L with L = 1
  # keys enter as arguments: as closed-over constants XLA would fold the random draws at compile
  keys = jax.random.split(jax.random.key(c.seed))
  values_c, values_s = jax.jit(lambda k: (run(lam_c, convex, k[0]), run(lam_s, strong, k[1])))(keys)
  return {"convex": np.asarray(values_c), "strong": np.asarray(values_s)}


# ------------------------------------------------------------------ 2. momentum's terminal speed


def momentum_steps(eta: float, alpha: float, g: np.ndarray, steps: int) -> np.ndarray:
  """|x_{k+1} - x_k| for k = 0 .. steps-1 of `optim.heavy_ball(eta, alpha)` on f(x) = <g, x>."""
  g = jnp.asarray(g)
  f = lambda x: jnp.dot(g, x)
  xs = jax.jit(lambda: U.optimize(optim.heavy_ball(eta, alpha), f, jnp.zeros_like(g), steps).xs)()
  return np.linalg.norm(np.diff(np.asarray(xs), axis=0), axis=1)


def terminal_speed(alpha: float) -> float:
  """The lecture's limit of heavy ball's step over GD's on a constant gradient: 1 / (1 - alpha)."""
  return 1.0 / (1.0 - alpha)


# ------------------------------------------------------------ 3. heavy ball's convergence region


def heavy_ball_growth(eta_l: jax.Array, alpha: jax.Array, steps: int) -> jax.Array:
  """|x_K / x_0| of `optim.heavy_ball(eta, alpha)` on f = x^2 / 2 (L = 1) from x_0 = 1
  (inf once it overflowed), for arrays of eta L and alpha of one shape (vmapped)."""
  f = lambda x: 0.5 * jnp.sum(x * x)

  def one(eta, a):
    xs = U.optimize(optim.heavy_ball(eta, a), f, jnp.ones(1), steps).xs
    last = jnp.abs(xs[-1, 0])
    return jnp.where(jnp.isnan(last), jnp.inf, last)  # overflow ends in inf - inf = nan

  return jax.vmap(one)(eta_l.ravel(), alpha.ravel()).reshape(eta_l.shape)


# ---------------------------------------------------------------- 4. AdaGrad vs RMSProp


def tracking_run(tx, c, key):
  """Noisy quadratic 1/2 |x - target_k|^2 with a target that jumps by `ada_jump` at
  `ada_switch` of the run; gradients x - target_k + N(0, I). Returns (loss_k, effective step
  eta / sqrt(G_k) of coordinate 0), each (ada_steps,), for one seed. `tx` is AdaGrad or RMSProp
  (the state's first entry holds G)."""
  switch = int(c.ada_switch * c.ada_steps)

  def step(carry, inputs):
    x, state = carry
    k, key = inputs
    target = jnp.where(k >= switch, c.ada_jump, 0.0)
    loss = 0.5 * jnp.sum((x - target) ** 2)
    g = x - target + jax.random.normal(key, x.shape, x.dtype)
    updates, state = tx.update(g, state, x)
    inner = state[0]
    accumulated = getattr(inner, "sum_of_squares", None)
    if accumulated is None:
      accumulated = inner.nu
    return (x + updates, state), (loss, c.ada_eta / jnp.sqrt(accumulated[0]))

  x0 = jnp.zeros(c.ada_dim)
  inputs = (jnp.arange(c.ada_steps), jax.random.split(key, c.ada_steps))
  _, (loss, eff) = jax.lax.scan(step, (x0, tx.init(x0)), inputs)
  return loss, eff


def adaptive_runs(c) -> dict:
  rules = {
    "AdaGrad": optim.adagrad(c.ada_eta, initial_accumulator_value=0.0, eps=1e-8),
    "RMSProp": optim.rmsprop(c.ada_eta, decay=c.rms_decay, eps=1e-8),
  }
  keys = jax.random.split(jax.random.key(c.seed + 1), c.ada_seeds)
  out = {}
  for name, tx in rules.items():
    loss, eff = jax.jit(jax.vmap(lambda k, tx=tx: tracking_run(tx, c, k)))(keys)
    out[name] = {"loss": np.asarray(loss).mean(0), "eff": np.asarray(eff).mean(0)}
  return out


# --------------------------------------------------------------------------- 5. Adam's cold start


def adam_without_bias_correction(eta, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
  """Adam with the bias correction removed: -eta M / (sqrt(G + eps_root) + eps), where M and G
  are the moments that `optim.scale_by_adam` itself keeps (its state's mu and nu)."""
  inner = optim.scale_by_adam(b1, b2, eps, eps_root)

  def update_fn(updates, state, params=None):
    _, state = inner.update(updates, state, params)
    step = jax.tree.map(lambda m, n: -eta * m / (jnp.sqrt(n + eps_root) + eps), state.mu, state.nu)
    return step, state

  return optax.GradientTransformation(inner.init, update_fn)


def adam_steps(g, eta, steps, *, eps, eps_root) -> dict:
  """Per-coordinate steps x_{k+1} - x_k, (steps, d), of Adam with and without bias correction
  on f(x) = <g, x> (a constant gradient)."""
  g = jnp.asarray(g)
  f = lambda x: jnp.dot(g, x)
  x0 = jnp.zeros_like(g)
  rules = {
    "corrected": optim.adam(eta, eps=eps, eps_root=eps_root),
    "uncorrected": adam_without_bias_correction(eta, eps=eps, eps_root=eps_root),
  }
  return {
    name: np.diff(np.asarray(jax.jit(lambda tx=tx: U.optimize(tx, f, x0, steps).xs)()), axis=0)
    for name, tx in rules.items()
  }


# ------------------------------------------------------------------------------ 6. convexity


def convexity_pairs(fun, xs, ys):
  """At the pairs (xs[i], ys[i]), each (num, d): the Bregman gap D = f(y) - f(x) -
  <grad f(x), y - x>, |y - x|^2, <grad f(x) - grad f(y), x - y> and |grad f(x) - grad f(y)|^2.
  Jit the caller."""
  vg = jax.vmap(jax.value_and_grad(fun))
  fx, gx = vg(xs)
  fy, gy = vg(ys)
  diff, gdiff = ys - xs, gx - gy
  bregman = fy - fx - jnp.sum(gx * diff, axis=1)
  return (
    bregman,
    jnp.sum(diff * diff, axis=1),
    jnp.sum(gdiff * (xs - ys), axis=1),
    jnp.sum(gdiff * gdiff, axis=1),
  )


def run(config) -> FigureResult:
  c = config
  with jax.enable_x64(True):
    # 1.
    sgd = sgd_rate_runs(c)
    # 2.
    g = np.array([3.0, -4.0])
    speeds = {a: momentum_steps(c.momentum_eta, a, g, c.momentum_steps) for a in c.alphas}
    alpha_vs_eta = momentum_schedule_runs(c)
    # 3.
    eta_grid = np.linspace(0.02, 4.2, c.hb_grid)
    alpha_grid = np.linspace(0.0, 0.98, c.hb_grid)
    ee, aa = np.meshgrid(eta_grid, alpha_grid)
    edge = 2.0 * (1.0 + c.hb_alpha)
    probe = np.array([edge * (1 - c.hb_margin), edge * (1 + c.hb_margin)])
    probe_alpha = np.array([c.hb_alpha, c.hb_alpha])
    # the divergence threshold for alpha = 0, 0.5, 0.9 on a fine line of eta L around 2 (1 + a)
    line_alphas = np.array([0.0, 0.5, 0.9])
    rel = np.linspace(0.9, 1.1, 2001)
    line_eta = (2.0 * (1.0 + line_alphas)[:, None] * rel[None, :]).ravel()
    line_alpha = np.repeat(line_alphas, rel.size)
    # all heavy-ball runs of this panel in one compiled call
    flat_eta = np.concatenate([ee.ravel(), probe, line_eta])
    flat_alpha = np.concatenate([aa.ravel(), probe_alpha, line_alpha])
    flat = np.asarray(
      jax.jit(lambda e, a: heavy_ball_growth(e, a, c.hb_steps))(flat_eta, flat_alpha)
    )
    growth = flat[: ee.size].reshape(ee.shape)
    probe_growth = flat[ee.size : ee.size + 2]
    line_growth = flat[ee.size + 2 :].reshape(line_alphas.size, rel.size)
    f1 = lambda x: 0.5 * jnp.sum(x * x)
    hb_traj = {
      name: np.asarray(
        jax.jit(
          lambda e=e: U.optimize(optim.heavy_ball(e, c.hb_alpha), f1, jnp.ones(1), 60).xs[:, 0]
        )()
      )
      for name, e in (("inside", probe[0]), ("outside", probe[1]))
    }
    boundary = {}
    for i, a in enumerate(line_alphas):
      first = np.flatnonzero(line_growth[i] > 1.0)
      boundary[float(a)] = float(2.0 * (1.0 + a) * rel[first[0]]) if first.size else np.inf
    # 4.
    ada = adaptive_runs(c)
    # 5.
    g_adam = np.array([2.0, -0.3, 5e-3])
    adam_clean = adam_steps(g_adam, c.adam_eta, c.adam_steps, eps=1e-12, eps_root=0.0)
    g_small = np.array([1e-2, -1e-2])
    adam_slides = adam_steps(g_small, c.adam_eta, 1, eps=0.0, eps_root=1e-5)
    # 6.
    x, y = problems.logistic_data(c.logistic_points, c.logistic_dim, c.seed)
    l2 = c.logistic_l2
    logistic = lambda w: problems.logistic_loss(w, x, y, l2)
    L_log = float(np.linalg.norm(np.asarray(x), 2) ** 2 / (4 * c.logistic_points) + l2)
    lam_q = problems.spectrum(c.logistic_dim, 0.05, 2.0)
    quad = problems.quadratic(jnp.asarray(lam_q))
    consts = {"quadratic": (quad, float(lam_q.max()), float(lam_q.min()), 3.0)}
    consts["logistic"] = (logistic, L_log, l2, 1.0)
    pairs = {}
    rng = np.random.default_rng(c.seed)
    for name, (fun, L, mu, scale) in consts.items():
      xs, ys = scale * rng.normal(size=(2, c.pairs, c.logistic_dim))
      out = jax.jit(lambda a, b, fun=fun: convexity_pairs(fun, a, b))(xs, ys)
      b, d2, mono, g2 = (np.asarray(v) for v in out)
      pairs[name] = {
        "smooth": b / (0.5 * L * d2),  # <= 1: descent lemma
        "strong": b / (0.5 * mu * d2),  # >= 1
        "monotone": mono / (mu * d2),  # >= 1
        # L-smoothness's three equivalent forms (notes 000 ~128-130)
        "smooth_bregman": b / (g2 / (2 * L)),  # >= 1
        "smooth_monotone": mono / (L * d2),  # <= 1
        "smooth_cocoercive": mono / (g2 / L),  # >= 1
        # strong convexity's forms 3-5 (notes 000 ~155-159)
        "strong_gradient": g2 / (mu * mu * d2),  # >= 1: |grad f(x) - grad f(y)| >= mu |x - y|
        "strong_bregman": b / (g2 / (2 * mu)),  # <= 1
        "strong_monotone": mono / (g2 / mu),  # <= 1
        "L": L,
        "mu": mu,
      }
    w0 = jnp.zeros(c.logistic_dim)
    w_star = jax.jit(lambda: U.newton_minimizer(logistic, w0))()
    f_star = float(logistic(w_star))
    gd = jax.jit(lambda: U.optimize(optim.sgd(1.0 / L_log), logistic, w0, c.gd_steps).xs)()
    gd_values = np.asarray(jax.vmap(logistic)(gd))
    gd_grad2 = np.asarray(jnp.sum(jax.vmap(jax.grad(logistic))(gd) ** 2, axis=1))
    armijo = jax.jit(
      lambda: U.optimize(
        optim.armijo(c.armijo_eta0 / L_log),
        logistic,
        w0,
        60,
        extra=U.line_search_extra(logistic),
        record_states=True,
      )
    )()
    a_xs, a_eta = np.asarray(armijo.xs), np.asarray(armijo.states.learning_rate, np.float64)
    a_g = np.asarray(jax.vmap(jax.grad(logistic))(armijo.xs))
    a_f = np.asarray(jax.vmap(logistic)(armijo.xs))
    # the accepted eta is stored in float32: recompute it from the iterates in float64
    a_eta = np.linalg.norm(a_xs[1:] - a_xs[:-1], axis=1) / np.linalg.norm(a_g[:-1], axis=1)
    # 7.
    well = {
      name: np.asarray(
        jax.jit(
          lambda rule=rule: U.optimize(
            rule(c.well_eta), tilted_well, jnp.full(1, c.well_start), c.well_steps
          ).xs[:, 0]
        )()
      )
      for name, rule in WELL_RULES.items()
    }
    rare = {
      "AdaGrad": rare_steps(optim.adagrad(1.0), c.rare_periods, c.rare_steps),
      "SGD": rare_steps(optim.sgd(1.0), c.rare_periods, c.rare_steps),
    }

  checks = []
  # 1.
  k = U.fit_window(c.sgd_fit_from, c.sgd_steps)
  slope_c = U.loglog_slope(k, sgd["convex"][k])
  slope_s = U.loglog_slope(k, sgd["strong"][k])
  why = (
    "; tolerance 0.15: the seed average has sampling noise and the fit window still holds "
    "transients (the decay of x_0's share, the strongly convex run's k0 = L/mu shift)"
  )
  checks.append(
    check_close(
      "1. SGD, eta_k = eta_0/sqrt(k+1), convex quadratic (rank-deficient, mu = 0) with gradient "
      "noise: fitted log-log slope of E f - f* (notes 000 ~347, 002 ~156: O(1/sqrt k))" + why,
      slope_c,
      -0.5,
      atol=0.15,
      rtol=0.0,
    )
  )
  checks.append(
    check_close(
      "1. SGD, eta_k = 1/(mu (k + L/mu)), mu-strongly convex quadratic with gradient noise: "
      "fitted log-log slope of E f - f* (notes 000 ~348, 002 ~156: O(1/k))" + why,
      slope_s,
      -1.0,
      atol=0.15,
      rtol=0.0,
    )
  )
  # 2.
  sgd_step = c.momentum_eta * float(np.linalg.norm(g))
  ratios = {a: float(s[-1] / sgd_step) for a, s in speeds.items()}
  for a, r in ratios.items():
    checks.append(
      check_close(
        f"2. heavy ball, alpha = {a:g}, constant gradient: terminal step / GD step eta |g| "
        f"after {c.momentum_steps} steps (notes 002 ~172-176: 1/(1 - alpha))",
        r,
        terminal_speed(a),
        rtol=1e-3,
      )
    )
  checks.append(
    check_close(
      "2. raising alpha from 0.5 to 0.99: terminal step ratio (notes 002 ~176: 2x -> 100x, "
      "a factor 50)",
      ratios[max(c.alphas)] / ratios[min(c.alphas)],
      terminal_speed(max(c.alphas)) / terminal_speed(min(c.alphas)),
      rtol=1e-3,
    )
  )
  plateau = {name: quarter_ratio(v) for name, v in alpha_vs_eta.items()}
  ramp, shrink = plateau["alpha 0.5 -> 0.99, eta constant"], plateau["alpha 0.9, eta shrinking"]
  final_ratio = float(
    np.mean(alpha_vs_eta["alpha 0.5 -> 0.99, eta constant"][-100:])
    / np.mean(alpha_vs_eta["alpha 0.9, eta shrinking"][-100:])
  )
  checks.append(
    check(
      "2b. heavy ball on the noisy strongly convex quadratic, alpha raised 0.5 -> 0.99 "
      "(inject_hyperparams with a beta schedule) vs eta shrunk at alpha 0.9: mean f - f* over "
      "the last quarter / over the second quarter (notes 002 ~176: adjusting alpha matters "
      "less than shrinking eta)",
      {**plateau, "final f - f*, alpha schedule / eta schedule": final_ratio},
      "alpha schedule >= 1 (its noise floor rises with eta / (1 - alpha)); eta schedule < 0.6 "
      "(still falling, f - f* ~ eta); final ratio > 10",
      ramp >= 1.0 and shrink < 0.6 and final_ratio > 10.0,
    )
  )
  # 3.
  checks.append(
    check_less(
      f"3. heavy ball on f = L x^2/2, alpha = {c.hb_alpha:g}, eta L = {probe[0]:.4g} "
      f"({c.hb_margin:.0%} inside 2 (1 + alpha)): |x_K / x_0| after {c.hb_steps} steps "
      "(notes 000 ~278, 001 ~38: converges inside the region)",
      float(probe_growth[0]),
      1e-6,
    )
  )
  checks.append(
    check_greater(
      f"3. heavy ball, alpha = {c.hb_alpha:g}, eta L = {probe[1]:.4g} ({c.hb_margin:.0%} "
      f"outside): |x_K / x_0| after {c.hb_steps} steps (notes 000 ~278: heavy ball need not "
      "converge; here it diverges although GD's region eta L < 2 would hold a smaller step)",
      float(probe_growth[1]),
      1e6,
    )
  )
  measured_edge = {a: boundary[a] / (2 * (1 + a)) for a in boundary}
  checks.append(
    check(
      "3. smallest diverging eta L (|x_K| > |x_0| after K steps, on a grid of step 1e-4 "
      f"relative) over 2 (1 + alpha), alpha = 0, 0.5, 0.9 (K = {c.hb_steps}; notes 000 ~278)",
      [round(v, 5) for v in measured_edge.values()],
      "1 (rtol 1e-2)",
      all(abs(v - 1) <= 1e-2 for v in measured_edge.values()),
    )
  )
  inside = growth[(ee < 2 * (1 + aa) * 0.9)]
  outside = growth[(ee > 2 * (1 + aa) * 1.1)]
  checks.append(
    check(
      f"3. the (eta L, alpha) map ({c.hb_grid}^2 runs): largest |x_K/x_0| more than 10% inside "
      "the region, smallest more than 10% outside",
      [float(inside.max()), float(outside.min())],
      "< 1 and > 1e3",
      inside.max() < 1.0 and outside.min() > 1e3,
    )
  )
  # 4.
  switch = int(c.ada_switch * c.ada_steps)
  eff_a, eff_r = ada["AdaGrad"]["eff"], ada["RMSProp"]["eff"]
  kk = U.fit_window(c.ada_steps // 20, switch - 1)
  slope_ada = U.loglog_slope(kk + 1, eff_a[kk])
  checks.append(
    check_close(
      "4. AdaGrad's effective step eta / sqrt(G_k) under gradient noise: fitted log-log slope "
      "before the target moves (notes 000 ~389: its learning rate falls too fast, like "
      "1/sqrt(k))",
      slope_ada,
      -0.5,
      atol=0.05,
      rtol=0.0,
    )
  )
  checks.append(
    check_less(
      "4. effective step at the end: AdaGrad / RMSProp (notes 000 ~401: RMSProp fixes "
      "AdaGrad's decay)",
      float(eff_a[-1] / eff_r[-1]),
      0.1,
    )
  )
  tail = max(1, (c.ada_steps - switch) // 5)
  loss_a, loss_r = (
    float(ada["AdaGrad"]["loss"][-tail:].mean()),
    float(ada["RMSProp"]["loss"][-tail:].mean()),
  )
  checks.append(
    check_less(
      f"4. after the target moves at step {switch}: mean loss over the last {tail} steps, "
      "RMSProp / AdaGrad (RMSProp tracks, AdaGrad's small steps lag)",
      loss_r / loss_a,
      0.5,
    )
  )
  # 5.
  b1, b2 = 0.9, 0.999
  first_c = np.abs(adam_clean["corrected"][0])
  first_u = np.abs(adam_clean["uncorrected"][0])
  checks.append(
    check_close(
      "5. Adam with bias correction, eps -> 0: first step |dx_i| / eta, max over coordinates "
      "with |g_i| from 5e-3 to 2 (notes 004 ~2553: M_hat / sqrt(G_hat) = sign(g))",
      float(np.max(np.abs(first_c / c.adam_eta - 1.0))) + 1.0,
      1.0,
      rtol=1e-6,
    )
  )
  factor = (1 - b1) / np.sqrt(1 - b2)
  checks.append(
    check_close(
      "5. without bias correction: first step / corrected first step (notes 004 ~2553: the cold "
      "start; M is 10x and G 1000x too small, so the step is (1 - b1)/sqrt(1 - b2) too large)",
      float(np.mean(first_u / first_c)),
      float(factor),
      rtol=1e-6,
    )
  )
  t = np.arange(1, c.adam_steps + 1)
  profile = np.abs(adam_clean["uncorrected"][:, 0]) / c.adam_eta
  predicted = (1 - b1**t) / np.sqrt(1 - b2**t)
  checks.append(
    check_less(
      f"5. uncorrected steps 1..{c.adam_steps} over eta vs (1 - b1^t)/sqrt(1 - b2^t): max "
      f"relative error (largest {predicted.max():.2f}x at t = {int(t[np.argmax(predicted)])})",
      float(np.max(np.abs(profile / predicted - 1))),
      1e-6,
    )
  )
  s_c = float(np.abs(adam_slides["corrected"][0, 0]) / c.adam_eta)
  s_u = float(np.abs(adam_slides["uncorrected"][0, 0]) / c.adam_eta)
  gs, delta = 1e-2, 1e-5
  pred_small = ((1 - b1) * gs / np.sqrt((1 - b2) * gs**2 + delta)) / (gs / np.sqrt(gs**2 + delta))
  checks.append(
    check_close(
      "5. the slides' delta = 1e-5 inside the root, |g| = 1e-2: uncorrected / corrected first "
      "step (here the cold start is a slow start: (1-b1)|g|/sqrt((1-b2)g^2+delta) over "
      "|g|/sqrt(g^2+delta))",
      s_u / s_c,
      float(pred_small),
      rtol=1e-6,
    )
  )
  # 6.
  smooth_max = {n: float(p["smooth"].max()) for n, p in pairs.items()}
  strong_min = {n: float(p["strong"].min()) for n, p in pairs.items()}
  mono_min = {n: float(p["monotone"].min()) for n, p in pairs.items()}
  checks.append(
    check(
      f"6. descent lemma at {c.pairs} random pairs: max (f(y) - f(x) - <grad f(x), y-x>) / "
      "(L/2 |y-x|^2), quadratic and logistic (notes 000 ~88)",
      smooth_max,
      "<= 1",
      all(v <= 1 + 1e-12 for v in smooth_max.values()),
    )
  )
  checks.append(
    check(
      f"6. strong convexity at {c.pairs} random pairs: min (f(y) - f(x) - <grad f(x), y-x>) / "
      "(mu/2 |y-x|^2) (notes 000 ~146)",
      strong_min,
      ">= 1",
      all(v >= 1 - 1e-12 for v in strong_min.values()),
    )
  )
  checks.append(
    check(
      f"6. strong convexity's second form at {c.pairs} random pairs: min <grad f(x) - grad f(y),"
      " x - y> / (mu |x-y|^2) (notes 000 ~151)",
      mono_min,
      ">= 1",
      all(v >= 1 - 1e-12 for v in mono_min.values()),
    )
  )
  forms = {
    "smooth_bregman": (">=", "D / (|dg|^2 / 2L)"),
    "smooth_monotone": ("<=", "<dg, dx> / (L |dx|^2)"),
    "smooth_cocoercive": (">=", "<dg, dx> / (|dg|^2 / L)"),
    "strong_gradient": (">=", "|dg|^2 / (mu^2 |dx|^2)"),
    "strong_bregman": ("<=", "D / (|dg|^2 / 2mu)"),
    "strong_monotone": ("<=", "<dg, dx> / (|dg|^2 / mu)"),
  }
  extreme = {
    form: {n: float(p[form].min() if way == ">=" else p[form].max()) for n, p in pairs.items()}
    for form, (way, _) in forms.items()
  }
  holds = {
    form: all(
      (v >= 1 - 1e-9) if forms[form][0] == ">=" else (v <= 1 + 1e-9) for v in extreme[form].values()
    )
    for form in forms
  }
  for group, keys, where in (
    (
      "L-smoothness's three equivalent forms",
      [k for k in forms if "smooth" in k],
      "notes 000 ~128-130",
    ),
    ("strong convexity's forms 3-5", [k for k in forms if "strong" in k], "notes 000 ~155-159"),
  ):
    checks.append(
      check(
        f"6. {group} at {c.pairs} random pairs, quadratic and logistic (dx = x - y, dg = grad "
        f"f(x) - grad f(y), D the Bregman gap; {where}): "
        + "; ".join(f"{forms[k][1]} {'min' if forms[k][0] == '>=' else 'max'}" for k in keys),
        {k: extreme[k] for k in keys},
        "; ".join(f"{forms[k][0]} 1" for k in keys),
        all(holds[k] for k in keys),
      )
    )
  kk6 = np.arange(1, c.gd_steps + 1)
  bound_ratio = kk6 * np.minimum.accumulate(gd_grad2[:-1]) / (2 * L_log * (gd_values[0] - f_star))
  checks.append(
    check_less(
      "6. GD with eta = 1/L on logistic regression: max_k k min_{i<k} |grad f(x_i)|^2 / "
      f"(2 L (f(x_0) - f*)) over k <= {c.gd_steps} (notes 000 ~102-105)",
      float(bound_ratio.max()),
      1.0,
    )
  )
  c1, c2 = 1e-4, 0.9
  gg = np.sum(a_g[:-1] ** 2, axis=1)
  valid = a_f[:-1] - f_star > 1e-10  # steps before f reached round-off level
  armijo_ok = a_f[1:] <= a_f[:-1] - c1 * a_eta * gg + 1e-15
  curvature_ok = np.sum(a_g[1:] * a_g[:-1], axis=1) <= c2 * gg
  checks.append(
    check(
      f"6. backtracking (optim.armijo, c = {c1:g}, halving from {c.armijo_eta0:g}/L): share of "
      f"steps (while f - f* > 1e-10) satisfying Armijo and the curvature condition (c2 = {c2:g}),"
      " the Wolfe conditions"
      " (notes 000 ~125-128)",
      [float(armijo_ok[valid].mean()), float(curvature_ok[valid].mean())],
      "[1, 1]",
      armijo_ok[valid].all() and curvature_ok[valid].all(),
    )
  )
  kappa_bound = L_log / l2
  change = np.abs(np.diff(gd_values))
  stops, stop_gaps = [], []
  for eps in c.stop_eps:
    hit = np.flatnonzero(change < eps)
    stops.append(int(hit[0]) + 1 if hit.size else -1)
    stop_gaps.append(float(gd_values[stops[-1]] - f_star) if hit.size else float("inf"))
  checks.append(
    check(
      "6. stopping rule |f^{k+1} - f^k| < eps (notes 000 ~44) for eps = "
      + ", ".join(f"{e:g}" for e in c.stop_eps)
      + ": steps taken, and f - f* at the stop over (L/mu) eps",
      {
        "steps": stops,
        "gap_over_bound": [
          gp / (kappa_bound * e) for gp, e in zip(stop_gaps, c.stop_eps, strict=True)
        ],
      },
      "steps increasing; every ratio < 1",
      all(s > 0 for s in stops)
      and all(a < b for a, b in zip(stops, stops[1:], strict=False))
      and all(gp < kappa_bound * e for gp, e in zip(stop_gaps, c.stop_eps, strict=True)),
    )
  )

  # 7.
  # f'(x) = 0.4 x^3 - x - 0.3: its outer roots are the two minima, the middle one the maximum
  critical = np.sort(np.roots([0.4, 0.0, -1.0, -0.3]).real)
  minima = critical[[0, 2]]  # the local and the global minimum
  finals = {name: float(xs[-1]) for name, xs in well.items()}
  stuck = ["GD", "heavy ball 0.5"]
  through = ["heavy ball 0.9", "Nesterov 0.9"]
  checks.append(
    check(
      f"7. tilted double well f = 0.1x^4 - 0.5x^2 - 0.3x from x = {c.well_start:g}, eta = "
      f"{c.well_eta:g}, {c.well_steps} steps: final x of GD and heavy ball 0.5 (the local minimum "
      f"{minima[0]:.3f}) and of heavy ball 0.9 and Nesterov 0.9 (the global minimum "
      f"{minima[1]:.3f}); notes 004 ~2155-2159, momentum carries past poor local minima",
      {name: finals[name] for name in stuck + through},
      f"{stuck} within 1e-3 of {minima[0]:.3f}; {through} within 1e-3 of {minima[1]:.3f}",
      all(abs(finals[n] - minima[0]) < 1e-3 for n in stuck)
      and all(abs(finals[n] - minima[1]) < 1e-3 for n in through),
    )
  )
  periods = np.asarray(c.rare_periods, np.float64)
  ada_ratio = rare["AdaGrad"] / rare["AdaGrad"][0]
  sgd_ratio = rare["SGD"] / rare["SGD"][0]
  checks.append(
    check(
      "7. AdaGrad's rare coordinates (notes 000 ~387-388): step on a coordinate whose gradient "
      f"comes every P = {tuple(c.rare_periods)} steps, over the every-step coordinate's, "
      "second half of the run; AdaGrad vs SGD",
      {"AdaGrad": ada_ratio.tolist(), "SGD": sgd_ratio.tolist()},
      f"AdaGrad sqrt(P) = {np.sqrt(periods).round(3).tolist()} within 5%; SGD 1",
      bool(np.allclose(ada_ratio, np.sqrt(periods), rtol=0.05))
      and bool(np.allclose(sgd_ratio, 1.0, rtol=1e-6)),
    )
  )

  data = {
    "well": well,
    "well_minima": minima,
    "rare_ratio": {"AdaGrad": ada_ratio, "SGD": sgd_ratio},
    "rare_periods": list(c.rare_periods),
    "sgd_convex": sgd["convex"],
    "sgd_strong": sgd["strong"],
    "sgd_slopes": [slope_c, slope_s],
    "sgd_fit_from": c.sgd_fit_from,
    "momentum_ratios": {str(a): r for a, r in ratios.items()},
    "momentum_steps": {str(a): s / sgd_step for a, s in speeds.items()},
    "alpha_vs_eta": alpha_vs_eta,
    "hb_eta_grid": eta_grid,
    "hb_alpha_grid": alpha_grid,
    "hb_log_growth": np.log10(np.maximum(growth, 1e-300)),
    "hb_probe": {"eta_l": probe, "alpha": probe_alpha, "growth": probe_growth},
    "hb_trajectories": hb_traj,
    "hb_alpha": c.hb_alpha,
    "hb_boundary": {str(a): b for a, b in boundary.items()},
    "ada_switch": switch,
    "ada_eff": {n: v["eff"] for n, v in ada.items()},
    "ada_loss": {n: v["loss"] for n, v in ada.items()},
    "ada_slope": slope_ada,
    "adam_profile_uncorrected": profile,
    "adam_profile_corrected": np.abs(adam_clean["corrected"][:, 0]) / c.adam_eta,
    "adam_first_ratio": float(np.mean(first_u / first_c)),
    "adam_slides_ratio": s_u / s_c,
    "pair_ratios": {
      n: {k: p[k] for k in ("smooth", "strong", "monotone")} for n, p in pairs.items()
    },
    "gd_bound_ratio": bound_ratio,
    "gd_gap": gd_values - f_star,
    "stop_eps": list(c.stop_eps),
    "stop_steps": stops,
    "stop_gaps": stop_gaps,
    "armijo_eta_times_L": a_eta * L_log,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(2, 5, panel=(4.6, 3.8), title=TITLE)
  # 1.
  ax = axes[0, 0]
  for key, label, slope, ref in (
    ("sgd_convex", "convex, $\\eta_k \\propto 1/\\sqrt{k}$", d["sgd_slopes"][0], -0.5),
    ("sgd_strong", "strongly convex, $\\eta_k = 1/\\mu k$", d["sgd_slopes"][1], -1.0),
  ):
    v = np.asarray(d[key])
    k = np.arange(1, len(v))
    (line,) = ax.loglog(k, v[1:], label=f"{label} (slope {slope:.2f})")
    k0 = d["sgd_fit_from"]
    ax.loglog(k[k0:], v[k0] * (k[k0:] / k0) ** ref, "--", color=line.get_color(), lw=0.8)
  ax.set_xlabel("iteration k")
  ax.set_ylabel("E f(x_k) - f*  (seed mean)")
  ax.set_title("SGD: O(1/$\\sqrt{k}$) and O(1/k)", fontsize=9)
  ax.legend(fontsize=7)
  # 2.
  ax = axes[0, 1]
  for a, s in d["momentum_steps"].items():
    s = np.asarray(s)
    (line,) = ax.semilogy(np.arange(1, len(s) + 1), s, label=f"$\\alpha$ = {a}")
    ax.axhline(1 / (1 - float(a)), color=line.get_color(), ls="--", lw=0.8)
  ax.set_xscale("log")
  ax.set_xlabel("step k")
  ax.set_ylabel("|step| / ($\\eta$ |g|)")
  ax.set_title("heavy ball's terminal speed 1/(1 - $\\alpha$)", fontsize=9)
  ax.legend(fontsize=7)
  # 3.
  ax = axes[0, 2]
  eg, ag = np.asarray(d["hb_eta_grid"]), np.asarray(d["hb_alpha_grid"])
  im = ax.pcolormesh(eg, ag, np.clip(d["hb_log_growth"], -12, 12), cmap="RdBu_r", shading="auto")
  fig.colorbar(im, ax=ax, label="log10 |x_K / x_0|")
  ax.plot(2 * (1 + ag), ag, "k-", lw=1.2, label="$\\eta L = 2(1+\\alpha)$")
  probe = d["hb_probe"]
  ax.plot(probe["eta_l"][:2], probe["alpha"][:2], "k*", ms=9, label="runs inside / outside")
  ax.set_xlim(eg[0], eg[-1])
  ax.set_xlabel("$\\eta L$")
  ax.set_ylabel("momentum $\\alpha$")
  ax.set_title("heavy ball on L x$^2$/2: where it converges", fontsize=9)
  ax.legend(fontsize=7, loc="upper left")
  # 6a.
  ax = axes[0, 3]
  bins = np.linspace(-1.0, 1.5, 76)
  for name, p in d["pair_ratios"].items():
    for key, label in (("smooth", "D / (L/2 |y-x|$^2$)"), ("strong", "D / ($\\mu$/2 |y-x|$^2$)")):
      ratio = np.clip(np.log10(np.asarray(p[key])), bins[0], bins[-1])
      ax.hist(ratio, bins=bins, alpha=0.5, label=f"{name}: {label}")
  ax.axvline(0.0, color="k", lw=1)
  ax.set_xlabel("log10 ratio (D = f(y) - f(x) - <$\\nabla$f(x), y-x>)")
  ax.set_ylabel("random pairs")
  ax.set_title("descent lemma (<= 1), strong convexity (>= 1)", fontsize=9)
  ax.legend(fontsize=6)
  # 4.
  ax = axes[1, 0]
  for name, eff in d["ada_eff"].items():
    eff = np.asarray(eff)
    ax.loglog(np.arange(1, len(eff) + 1), eff, label=name)
  ax.axvline(d["ada_switch"], color="gray", ls=":", lw=1, label="target moves")
  ax.set_xlabel("step k")
  ax.set_ylabel("effective step $\\eta / \\sqrt{G_k}$")
  ax.set_title(f"AdaGrad's step falls (slope {d['ada_slope']:.2f})", fontsize=9)
  ax.legend(fontsize=7)
  ax = axes[1, 1]
  for name, loss in d["ada_loss"].items():
    loss = np.asarray(loss)
    ax.semilogy(np.arange(len(loss)), loss, label=name, lw=0.8)
  ax.axvline(d["ada_switch"], color="gray", ls=":", lw=1)
  ax.set_xlabel("step k")
  ax.set_ylabel("loss 1/2 |x - target|$^2$ (seed mean)")
  ax.set_title("a late-moving target: RMSProp tracks it", fontsize=9)
  ax.legend(fontsize=7)
  # 5.
  ax = axes[1, 2]
  pu, pc = np.asarray(d["adam_profile_uncorrected"]), np.asarray(d["adam_profile_corrected"])
  t = np.arange(1, len(pu) + 1)
  ax.plot(t, pu, label="without bias correction")
  ax.plot(t, pc, label="with bias correction")
  ax.plot(
    t, (1 - 0.9**t) / np.sqrt(1 - 0.999**t), "k:", lw=0.8, label="(1-b1$^t$)/$\\sqrt{1-b2^t}$"
  )
  ax.set_xscale("log")
  ax.set_xlabel("step t (constant gradient)")
  ax.set_ylabel("|step| / $\\eta$")
  ax.set_title(f"Adam's cold start: step 1 is {d['adam_first_ratio']:.2f}x too large", fontsize=9)
  ax.legend(fontsize=7)
  # 6b.
  ax = axes[1, 3]
  ratio = np.asarray(d["gd_bound_ratio"])
  gap = np.asarray(d["gd_gap"])
  k = np.arange(1, len(ratio) + 1)
  ax.loglog(k, ratio, label="k min|$\\nabla f$|$^2$ / 2L(f$_0$ - f*)")
  ax.loglog(np.arange(1, len(gap)), gap[1:] / gap[0], label="(f$_k$ - f*) / (f$_0$ - f*)")
  for eps, s in zip(d["stop_eps"], d["stop_steps"], strict=True):
    if s > 0:
      ax.axvline(s, color="gray", ls=":", lw=0.8)
      ax.text(s, 0.5, f"{eps:g}", rotation=90, fontsize=6, va="center")
  ax.axhline(1.0, color="k", lw=0.8)
  ax.set_ylim(1e-16, 10)
  ax.set_xlim(1, 2 * max(max(d["stop_steps"]), 10))
  ax.set_xlabel("GD step k ($\\eta$ = 1/L, logistic regression)")
  ax.set_title("GD's bound and the |f$^{k+1}$ - f$^k$| < $\\epsilon$ stops", fontsize=9)
  ax.legend(fontsize=7, loc="lower left")
  # 7a.
  ax = axes[0, 4]
  x = np.linspace(-3.2, 2.6, 400)
  f = 0.1 * x**4 - 0.5 * x**2 - 0.3 * x
  ax.plot(x, f, color="k", lw=1)
  for name, xs in d["well"].items():
    xs = np.asarray(xs)
    ax.plot(xs, 0.1 * xs**4 - 0.5 * xs**2 - 0.3 * xs, ".-", ms=2, lw=0.6, alpha=0.7, label=name)
  ax.set_ylim(-1.5, 3.0)
  ax.set_xlabel("x")
  ax.set_title("momentum carries past the poor local minimum", fontsize=9)
  ax.legend(fontsize=7)
  # 7b.
  ax = axes[1, 4]
  ratios = d["rare_ratio"]
  periods = np.asarray(d["rare_periods"])
  ax.loglog(periods, ratios["AdaGrad"], "o-", label="AdaGrad")
  ax.loglog(periods, ratios["SGD"], "s-", label="SGD")
  ax.loglog(periods, np.sqrt(periods), "k:", label="$\\sqrt{P}$")
  ax.set_xlabel("gradient every P steps")
  ax.set_ylabel("step / every-step coordinate's")
  ax.set_title("AdaGrad: rare coordinates get larger steps", fontsize=9)
  ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME, rect=(0, 0, 1, 0.96))]
