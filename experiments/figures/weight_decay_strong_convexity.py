"""Weight decay turns a convex, not strongly convex problem into a strongly convex one, and
GD's sublinear rate into a linear one (lecture: f(x) -> f(x) + alpha |x|^2).

f(x) = 1/2 sum_i lambda_i (x_i - 1)^2 with lambda_i spread on a log scale over [1e-8, 1]
(L = 1, mu ~ 0: GD's f - f* falls like 1/k). f_alpha = f + alpha |x|^2 is (2 alpha)-strongly
convex and (1 + 2 alpha)-smooth, with minimizer x_i* = lambda_i / (lambda_i + 2 alpha). GD runs
with eta = 1 / (1 + 2 alpha) and `optax.chain(research.optim.add_l2_penalty(2 alpha), sgd)`:
the penalty's gradient 2 alpha x is added by the transformation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_close
from research import optim

NAME = "weight_decay_strong_convexity"
TITLE = "Weight decay makes the problem strongly convex: sublinear GD becomes linear"
CAPTION = (
  "GD on f + alpha |x|^2 for a convex quadratic whose curvatures reach 1e-8 (not strongly "
  "convex in practice). Without weight decay f - f* falls like 1/k (straight on log-log "
  "axes, right); with alpha > 0 the gap f_alpha - f_alpha* falls linearly (straight on the "
  "semilog axes, left) at a rate within the bound 1 - mu/L, mu = 2 alpha, L = 1 + 2 alpha."
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.dim = 400
  c.smallest = 1e-8
  c.alphas = (0.0, 1e-3, 3e-3, 1e-2)
  c.steps = 3000
  c.fit_from = 30
  return common.sized(size, c, test={"steps": 2000}, full={"steps": 6000})


def _gaps(config) -> np.ndarray:
  """(len(alphas), steps + 1) gaps f_alpha(x_k) - f_alpha* (float64)."""
  lam = jnp.asarray(problems.spectrum(config.dim, config.smallest, 1.0))
  f = lambda x: 0.5 * jnp.sum(lam * (x - 1.0) ** 2)
  x0 = jnp.zeros(config.dim)

  def one(alpha):
    f_alpha = lambda x: f(x) + alpha * jnp.sum(x * x)
    x_star = lam / (lam + 2 * alpha)
    tx = optax.chain(optim.add_l2_penalty(2 * alpha), optim.sgd(1.0 / (1.0 + 2 * alpha)))
    trace = U.optimize(
      tx, f_alpha, x0, config.steps, grad_fn=lambda x, key: jax.grad(f)(x), key=jax.random.key(0)
    )
    return trace.values - f_alpha(x_star)

  return np.stack([np.asarray(v) for v in jax.jit(lambda: [one(a) for a in config.alphas])()])


def run(config) -> FigureResult:
  with jax.enable_x64(True):
    gaps = _gaps(config)
  k = U.fit_window(config.fit_from, config.steps)
  slope0 = U.loglog_slope(k, gaps[0, k])
  rates = np.asarray([U.tail_rate(gap) for gap in gaps[1:]])
  bounds = np.asarray([1.0 - 2 * alpha / (1.0 + 2 * alpha) for alpha in config.alphas[1:]])
  # local semilog slopes of the unregularized run flatten out (sublinear): compare two windows
  n = config.steps
  early = U.linear_rate(gaps[0, n // 10 : n // 5], np.arange(n // 10, n // 5))
  late = U.linear_rate(gaps[0, n // 2 :], np.arange(n // 2, n + 1))
  checks = [
    check_close(
      "alpha = 0: fitted log-log slope of f - f* (sublinear O(1/k))", slope0, -1.0, rtol=0.1
    ),
    check(
      "alpha = 0: local per-step factor, early vs late window (sublinear: it creeps to 1)",
      [early, late],
      "early < late < 1",
      early < late < 1.0,
    ),
    check(
      "alpha > 0: fitted linear rates vs the bound 1 - mu/L = 1 - 2 alpha / (1 + 2 alpha)",
      np.round(rates, 6),
      "each <= its bound " + str(np.round(bounds, 6)),
      bool(np.all(rates <= bounds)),
    ),
    check(
      "alpha > 0: rates shrink as alpha grows (more strong convexity)",
      np.round(rates, 6),
      "decreasing",
      bool(np.all(np.diff(rates) < 0)),
    ),
    check(
      "relative gap at the last step: alpha = 0 vs alpha = max",
      [float(gaps[0, -1] / gaps[0, 0]), float(gaps[-1, -1] / gaps[-1, 0])],
      "> 1e-6 vs < 1e-10",
      gaps[0, -1] / gaps[0, 0] > 1e-6 and gaps[-1, -1] / gaps[-1, 0] < 1e-10,
    ),
  ]
  data = {
    "alphas": list(config.alphas),
    "slope_alpha0": slope0,
    "rates": rates,
    "bounds": bounds,
    "gaps": gaps,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  gaps = np.asarray(d["gaps"])
  fig, axes = common.subplots(1, 2, panel=(5.5, 4.0))
  k = np.arange(gaps.shape[1])
  for ax, log_x in ((axes[0], False), (axes[1], True)):
    for alpha, gap in zip(d["alphas"], gaps, strict=True):
      rel = np.where(gap > 0, gap / gap[0], np.nan)
      lab = "$\\alpha$ = 0 (convex)" if alpha == 0 else f"$\\alpha$ = {alpha:g}"
      (ax.loglog if log_x else ax.semilogy)(k[1:], rel[1:], label=lab)
    ax.set_xlabel("iteration k")
    ax.set_ylabel("$(f_\\alpha(x_k) - f_\\alpha^*) / (f_\\alpha(x_0) - f_\\alpha^*)$")
    ax.set_ylim(1e-14, 2)
    ax.legend(fontsize=8)
  axes[0].set_title("semilog: weight decay gives straight (linear-rate) lines")
  axes[1].set_title(f"log-log: $\\alpha$ = 0 has slope {d['slope_alpha0']:.2f} (O(1/k))")
  return [common.save_figure(fig, out_dir, NAME)]
