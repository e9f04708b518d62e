"""Gradient descent on an L-smooth quadratic with four learning rates: too small (slow),
1/L (converges), just under 2/L (jitters across the valley) and above 2/L (diverges).

f(x) = 1/2 (L x_1^2 + mu x_2^2). GD multiplies coordinate i by (1 - eta lambda_i) each step,
so it decreases f for every 0 < eta < 2/L and diverges beyond (the descent lemma's range).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_close, check_greater
from research import optim

NAME = "lr_regimes"
TITLE = "Learning-rate regimes of gradient descent: slow, good, jittering, divergent"
CAPTION = (
  "GD on f(x) = (L x1^2 + mu x2^2) / 2 with eta = 0.1/L (slow), 1/L (converges), 1.9/L "
  "(jitters across the valley: the steep coordinate changes sign every step) and 2.1/L "
  "(diverges). The lecture: every 0 < eta < 2/L decreases f at each step. The check bisects "
  "the step size at which GD starts to diverge and compares it with 2/L."
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.smoothness = 10.0  # L
  c.strong_convexity = 1.0  # mu
  c.x0 = (1.0, 1.5)
  c.num_steps = 60  # plotted runs
  c.factors = (0.1, 1.0, 1.9, 2.1)  # eta = factor / L
  c.bisect_steps = 2000
  c.bisect_iters = 40
  c.sweep = 40  # step sizes in (0, 2/L) checked for monotone decrease
  return common.sized(
    size, c, test={"bisect_steps": 500, "sweep": 10}, full={"bisect_steps": 4000, "sweep": 200}
  )


def _runner(config, num_steps: int):
  """etas (n,) -> GD traces for each step size (jitted once, vmapped; eta is traced)."""
  lam = jnp.array([config.smoothness, config.strong_convexity])
  f = problems.quadratic(lam)
  x0 = jnp.asarray(config.x0, jnp.float64)
  run = jax.jit(jax.vmap(lambda eta: U.optimize(optim.sgd(eta), f, x0, num_steps)))
  return lambda etas: run(jnp.asarray(etas, jnp.float64))


def run(config) -> FigureResult:
  L = config.smoothness
  with jax.enable_x64(True):
    etas = np.asarray(config.factors) / L
    short = _runner(config, config.num_steps)
    traces = short(etas)
    xs, values = np.asarray(traces.xs), np.asarray(traces.values)

    long = _runner(config, config.bisect_steps)

    def diverges(eta: float) -> bool:
      vals = np.asarray(long(np.array([eta])).values[0])
      return not vals[-1] <= vals[0]  # grows (or overflows) over the run

    critical = U.bisect(diverges, 1.0 / L, 3.0 / L, config.bisect_iters)
    sweep = np.linspace(0.0, 2.0 / L, config.sweep + 2)[1:-1]
    sweep_values = np.asarray(short(sweep).values)
  max_increase = float(np.max(np.diff(sweep_values, axis=1)))
  steep = xs[:, 1:, 0]  # the coordinate with curvature L, after the first step
  flips = np.mean(np.sign(steep[:, 1:]) != np.sign(steep[:, :-1]), axis=1)
  tol = 1e-6 * values[0, 0]
  iters = [U.iterations_to(v, tol) for v in values]
  checks = [
    check_close(
      "bisected divergence threshold eta_c * L (2000-step runs)", critical * L, 2.0, rtol=2e-3
    ),
    check(
      f"largest one-step change of f over {config.sweep} step sizes in (0, 2/L)",
      max_increase,
      "<= 0 (monotone decrease)",
      max_increase <= 0.0,
    ),
    check_greater("fraction of sign flips of x1 at eta = 1.9/L (jitter)", float(flips[2]), 0.9),
    check_greater(
      "f_K / f_0 at eta = 2.1/L (divergence)", float(values[3, -1] / values[3, 0]), 1e3
    ),
    check(
      "iterations to f <= 1e-6 f_0: eta = 0.1/L vs 1/L",
      [iters[0], iters[1]],
      "first > second (too small is slow)",
      iters[0] > iters[1],
    ),
  ]
  data = {
    "eigenvalues": [L, config.strong_convexity],
    "etas": etas,
    "critical_eta": critical,
    "two_over_L": 2.0 / L,
    "iterations_to_tol": iters,
    "final_values": values[:, -1],
    "xs": xs,
    "values": values,
    "max_increase_below_2_over_L": max_increase,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 2, panel=(5.5, 4.0))
  L, mu = d["eigenvalues"]
  ax = axes[0]
  U.contour(
    ax,
    problems.quadratic(jnp.array([L, mu])),
    (-1.6, 1.6),
    (-1.6, 1.6),
    log=False,
    levels=12,
    minimum=(0, 0),
  )
  labels = [f"$\\eta$ = {e * L:.1f}/L" for e in d["etas"]]
  colors = ["tab:blue", "tab:green", "tab:orange", "tab:red"]
  for xs, lab, col in zip(d["xs"], labels, colors, strict=True):
    xs = np.asarray(xs)[:25]
    inside = np.cumprod(np.all(np.abs(xs) < 1.6, axis=1)).astype(bool)
    ax.plot(xs[inside, 0], xs[inside, 1], "o-", ms=2.5, lw=1, color=col, label=lab)
  ax.set_title(f"GD iterates on $f = (L x_1^2 + \\mu x_2^2)/2$, L = {L:g}, $\\mu$ = {mu:g}")
  ax.legend(loc="lower right", fontsize=8)
  ax = axes[1]
  for vals, lab, col in zip(d["values"], labels, colors, strict=True):
    ax.semilogy(vals, color=col, label=lab)
  ax.set_xlabel("iteration k")
  ax.set_ylabel("$f(x_k) - f^*$")
  ax.set_title(f"divergence threshold: bisected {d['critical_eta'] * L:.4f}/L vs 2/L")
  ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
