"""An ill-conditioned valley f(x) = 1/2 x^T A x, A = diag(mu, L): GD zig-zags across it; heavy
ball and Nesterov build speed along it; AdaGrad / RMSProp / Adam rescale each coordinate;
delta-bar-delta (notes 002 ~224) adapts one learning rate per coordinate from the signs of
successive gradients; preconditioning by A^{-1} (gradient descent in X' = A^{1/2} X, where the
level sets are circles) goes straight to the minimum.

Step sizes are the textbook choices for a quadratic with curvatures in [mu, L]:
GD eta = 2 / (L + mu); heavy ball eta = 4 / (sqrt(L) + sqrt(mu))^2,
beta = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2; NAG eta = 1/L,
beta = (sqrt(kappa) - 1) / (sqrt(kappa) + 1); preconditioned GD eta = 1. Delta-bar-delta
starts every coordinate at GD's eta and adds kappa = 0.01 per step while a coordinate's sign
holds, keeps 70% of the rate when it flips (theta = 0.7); full batch, as the notes require.
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

NAME = "ill_conditioned_valley"
TITLE = "An ill-conditioned valley: zig-zag, momentum, per-coordinate rescaling, preconditioning"
CAPTION = (
  "f = (mu x1^2 + L x2^2) / 2 with kappa = L/mu = 25. GD (eta = 2/(L+mu)) zig-zags across the "
  "valley; heavy ball and NAG accelerate along it; AdaGrad, RMSProp and Adam rescale each "
  "coordinate so that their first steps are equal in both coordinates; delta-bar-delta raises the "
  "flat coordinate's rate and cuts the steep one's, where GD's sign flips; GD preconditioned by "
  "A^{-1} (the lecture's change of variables X' = A^{1/2} X, right panel, where the level "
  "sets are circles) goes straight down in one step. Check: iterations to f <= 1e-6 f_0 are "
  "ordered preconditioned < momentum methods < GD."
)

METHODS = (
  "GD",
  "heavy ball",
  "NAG",
  "AdaGrad",
  "RMSProp",
  "Adam",
  "delta-bar-delta",
  "preconditioned $A^{-1}$",
)
COLORS = (
  "tab:red",
  "tab:blue",
  "tab:cyan",
  "tab:green",
  "tab:purple",
  "k",
  "tab:brown",
  "tab:orange",
)
DBD = METHODS.index("delta-bar-delta")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.mu = 1.0
  c.L = 25.0
  c.x0 = (-4.0, 0.8)
  c.steps = 150
  c.tol = 1e-6
  c.adaptive_lr = (1.0, 0.2, 0.2)  # AdaGrad, RMSProp, Adam
  c.delta_bar_delta = (0.01, 0.3, 0.7)  # kappa (increase), phi (decrease), theta
  c.rate_step = 10  # the step at which delta-bar-delta's per-coordinate rates are compared
  return common.sized(size, c, full={"steps": 300})


def _rules(config):
  mu, L = config.mu, config.L
  sk = np.sqrt(L / mu)
  lr_ada, lr_rms, lr_adam = config.adaptive_lr
  return [
    optim.sgd(2.0 / (L + mu)),
    optim.heavy_ball(4.0 / (np.sqrt(L) + np.sqrt(mu)) ** 2, ((sk - 1) / (sk + 1)) ** 2),
    optim.nesterov(1.0 / L, (sk - 1) / (sk + 1)),
    optim.adagrad(lr_ada, initial_accumulator_value=0.0, eps=1e-8),
    optim.rmsprop(lr_rms),
    optim.adam(lr_adam),
    optim.delta_bar_delta(2.0 / (L + mu), *config.delta_bar_delta),
    optim.preconditioned_gd(1.0, jnp.diag(jnp.array([1.0 / mu, 1.0 / L]))),
  ]


def run(config) -> FigureResult:
  with jax.enable_x64(True):
    f = problems.quadratic(jnp.array([config.mu, config.L]))
    x0 = jnp.asarray(config.x0)
    rules = _rules(config)
    traces = jax.jit(
      lambda: [
        U.optimize(tx, f, x0, config.steps, record_states=i == DBD) for i, tx in enumerate(rules)
      ]
    )()
    # delta-bar-delta's per-coordinate rates after each step: (K, 2)
    rates = np.asarray(traces[DBD].states[0].rates)
    xs = np.stack([np.asarray(t.xs) for t in traces])  # (methods, K+1, 2)
    values = np.stack([np.asarray(t.values) for t in traces])  # (methods, K+1)
  iters = [U.iterations_to(v / v[0], config.tol) for v in values]
  it = dict(zip(METHODS, iters, strict=True))
  gd_steep = xs[0, 1:, 1]
  flips = float(np.mean(np.sign(gd_steep[1:]) != np.sign(gd_steep[:-1])))
  first = np.abs(xs[:, 1] - xs[:, 0])  # |first step| per coordinate
  ratio = first[:, 1] / first[:, 0]  # steep / flat
  adaptive = ratio[3:6]
  loose = [U.iterations_to(v / v[0], 1e-2) for v in values]
  precond = METHODS[-1]
  eta0 = 2.0 / (config.L + config.mu)
  kappa = config.delta_bar_delta[0]
  rate_flat, rate_steep = rates[config.rate_step - 1]
  checks = [
    check(
      "iterations to f <= 1e-6 f_0: preconditioned, heavy ball, NAG, GD",
      [it[precond], it["heavy ball"], it["NAG"], it["GD"]],
      "preconditioned < heavy ball, NAG < GD",
      it[precond] < min(it["heavy ball"], it["NAG"])
      and max(it["heavy ball"], it["NAG"]) < it["GD"],
    ),
    check_close(
      "preconditioned GD: iterations to the minimum (one Newton-like step)",
      it[precond],
      1.0,
      rtol=0.0,
    ),
    check_greater(
      "GD zig-zag: fraction of steps where the steep coordinate x2 flips sign", flips, 0.9
    ),
    check(
      "GD: first-step |dx2| / |dx1| (= kappa x2 / x1 without rescaling)",
      float(ratio[0]),
      f"{config.L * config.x0[1] / (config.mu * -config.x0[0]):.3g}",
      np.isclose(ratio[0], config.L * abs(config.x0[1]) / (config.mu * abs(config.x0[0]))),
    ),
    check(
      "AdaGrad / RMSProp / Adam: first-step |dx2| / |dx1| (per-coordinate rescaling)",
      np.round(adaptive, 4),
      "1 each (within 1e-3)",
      bool(np.all(np.abs(adaptive - 1) < 1e-3)),
    ),
    check(
      "iterations to f <= 1e-2 f_0: AdaGrad, RMSProp, Adam vs GD",
      loose[3:6] + [loose[0]],
      "each adaptive one < GD",
      all(v < loose[0] for v in loose[3:6]),
    ),
    check(
      f"delta-bar-delta (notes 002 ~224): rates after {config.rate_step} steps, flat x1 / steep "
      f"x2 (from eta0 = {eta0:.4f}); iterations to 1e-6 f_0 vs GD",
      [round(float(rate_flat), 4), float(f"{rate_steep:.3g}"), it["delta-bar-delta"], it["GD"]],
      f"x1's sign holds: eta0 + {config.rate_step - 1} kappa = "
      f"{eta0 + (config.rate_step - 1) * kappa:.4f} (the first step has no delta-bar); x2's "
      "flips: below eta0; fewer iterations than GD",
      bool(np.isclose(rate_flat, eta0 + (config.rate_step - 1) * kappa))
      and rate_steep < eta0
      and it["delta-bar-delta"] < it["GD"],
    ),
  ]
  data = {
    "methods": list(METHODS),
    "iterations_to_tol": iters,
    "iterations_to_1e-2": loose,
    "gd_flip_fraction": flips,
    "first_step_ratio": ratio,
    "delta_bar_delta_rates": rates,
    "xs": xs,
    "values": values,
    "mu": config.mu,
    "L": config.L,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  mu, L = d["mu"], d["L"]
  xs, values = np.asarray(d["xs"]), np.asarray(d["values"])
  fig, axes = common.subplots(1, 3, panel=(4.8, 4.0))
  ax = axes[0]
  U.contour(
    ax,
    problems.quadratic(jnp.array([mu, L])),
    (-4.5, 1.5),
    (-1.2, 1.2),
    levels=15,
    log=False,
    minimum=(0, 0),
  )
  for path, lab, col in zip(xs, METHODS, COLORS, strict=True):
    ax.plot(path[:60, 0], path[:60, 1], ".-", ms=3, lw=1, color=col, label=lab)
  ax.set_title(f"paths (first 60 steps), $\\kappa$ = {L / mu:g}")
  ax.legend(fontsize=7, loc="lower right")
  ax = axes[1]
  for vals, lab, col, n in zip(values, METHODS, COLORS, d["iterations_to_tol"], strict=True):
    vals = np.where(vals > 0, vals / vals[0], np.nan)
    ax.semilogy(vals, color=col, label=f"{lab} ({n:g} it.)")
  ax.axhline(1e-6, color="gray", ls=":", lw=0.8)
  ax.set_ylim(1e-16, 10)
  ax.set_xlabel("iteration k")
  ax.set_ylabel("$f(x_k) / f(x_0)$")
  ax.set_title("iterations to $f \\leq 10^{-6} f_0$ in the legend")
  ax.legend(fontsize=7)
  ax = axes[2]
  scale = np.sqrt(np.array([mu, L]))
  U.contour(
    ax,
    problems.quadratic(jnp.ones(2)),
    (-4.5, 4.5),
    (-4.5, 4.5),
    levels=12,
    log=False,
    minimum=(0, 0),
  )
  for i, col in ((0, COLORS[0]), (len(METHODS) - 1, COLORS[-1])):
    hat = xs[i, :60] * scale
    ax.plot(hat[:, 0], hat[:, 1], ".-", ms=3, lw=1, color=col, label=METHODS[i])
  ax.set_aspect("equal")
  ax.set_xlabel("$x'_1 = \\sqrt{\\mu} x_1$")
  ax.set_ylabel("$x'_2 = \\sqrt{L} x_2$")
  ax.set_title("in $X' = A^{1/2} X$ the level sets are circles")
  ax.legend(fontsize=7, loc="lower right")
  return [common.save_figure(fig, out_dir, NAME)]
