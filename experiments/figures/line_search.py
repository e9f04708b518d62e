"""Armijo backtracking line search vs a fixed step vs naive halving, on Rosenbrock's valley
f(x, y) = (1 - x)^2 + b (y - x^2)^2 (b = 10, minimum 0 at (1, 1)), from (-1.2, 1).

  * Armijo (lecture, gamma = c): from eta_0, halve eta until
    f(x - eta g) <= f(x) - c eta |g|^2; `research.optim.armijo`.
  * naive: halve eta until f(x - eta g) <= f(x) (any decrease): the same rule with c = 0.
  * fixed: eta = 0.01 (safe here) and eta = 0.03 (too large near the valley floor: the
    Hessian's largest eigenvalue at (1, 1) is about 101, so 2/L is about 0.02).
The accepted step of every iteration is read from the optimizer's state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import _optim_utils as U
from experiments.figures import common
from experiments.figures.common import FigureResult, check, check_less
from research import optim

NAME = "line_search"
TITLE = "Backtracking (Armijo) line search vs fixed steps vs naive halving"
CAPTION = (
  "Rosenbrock's valley f = (1 - x)^2 + 10 (y - x^2)^2. Armijo backtracking (start eta = 1, "
  "halve until f(x - eta g) <= f(x) - c eta |g|^2, c = 0.3), naive halving (accept any "
  "decrease, c = 0), and fixed steps 0.01 and 0.03 (> 2/L near the minimum). Left: paths; "
  "middle: f - f* per iteration; right: the accepted step sizes. Naive halving accepts "
  "steps with almost no decrease and ends higher than Armijo from most of 8 starts (from "
  "(-1.2, 1) it happens to jump close to the minimum). Check: every accepted Armijo "
  "step satisfies the condition, recomputed in float64 from the iterates."
)


def rosenbrock(p, b: float = 10.0):
  return (1.0 - p[0]) ** 2 + b * (p[1] - p[0] ** 2) ** 2


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.steps = 200
  c.start = (-1.5, 2.0)
  # more starts for the Armijo-vs-naive comparison (final f after `steps` iterations)
  c.starts = (
    (-1.2, 1.0),
    (-1.5, 2.0),
    (0.0, 0.0),
    (-1.0, -0.5),
    (1.5, 0.5),
    (-0.5, 1.5),
    (0.5, -0.5),
    (-2.0, 0.0),
  )
  c.eta0 = 1.0
  c.c = 0.3
  c.fixed = (0.01, 0.03)
  return common.sized(size, c, test={"steps": 120}, full={"steps": 400})


def _compute(config):
  x0 = jnp.asarray(config.start)
  extra = U.line_search_extra(rosenbrock)
  armijo = U.optimize(
    optim.armijo(config.eta0, c=config.c),
    rosenbrock,
    x0,
    config.steps,
    extra=extra,
    record_states=True,
  )
  naive = U.optimize(
    optim.armijo(config.eta0, c=0.0), rosenbrock, x0, config.steps, extra=extra, record_states=True
  )
  fixed = [U.optimize(optim.sgd(eta), rosenbrock, x0, config.steps) for eta in config.fixed]
  grads = jax.vmap(jax.grad(rosenbrock))(armijo.xs[:-1])
  starts = jnp.asarray(config.starts)
  final = lambda c: jax.vmap(
    lambda s: U.optimize(
      optim.armijo(config.eta0, c=c), rosenbrock, s, config.steps, extra=extra
    ).values[-1]
  )(starts)
  return {
    "armijo": armijo,
    "naive": naive,
    "fixed": fixed,
    "armijo_grads": grads,
    "starts_armijo": final(config.c),
    "starts_naive": final(0.0),
  }


def run(config) -> FigureResult:
  out = jax.tree.map(np.asarray, jax.jit(lambda: _compute(config))())
  arm, naive, fixed = out["armijo"], out["naive"], out["fixed"]
  # Recompute the Armijo condition in float64 from the float32 iterates and accepted steps.
  eta = arm.states.learning_rate.astype(np.float64)
  accepted = arm.states.accepted
  x = arm.xs.astype(np.float64)
  g = out["armijo_grads"].astype(np.float64)
  f64 = np.array([float(rosenbrock(p)) for p in x])
  candidate = x[:-1] - eta[:, None] * g
  f_new = np.array([float(rosenbrock(p)) for p in candidate])
  slack = f_new - (f64[:-1] - config.c * eta * np.sum(g * g, axis=1))
  # float32 rounding of f is about 1e-7 |f|; allow 1e-6 |f| + 1e-9
  worst = float(np.max((slack / (1e-6 * np.abs(f64[:-1]) + 1e-9))[accepted]))
  f_star = 0.0
  finals = {
    "armijo": float(arm.values[-1]),
    "naive": float(naive.values[-1]),
    **{f"fixed {e:g}": float(t.values[-1]) for e, t in zip(config.fixed, fixed, strict=True)},
  }
  naive_increase = float(np.max(np.diff(naive.values)))
  wins = int(np.sum(out["starts_armijo"] < out["starts_naive"]))
  checks = [
    check_less(
      "Armijo: max over accepted steps of violation / (1e-6 |f| + 1e-9) "
      f"({int(accepted.sum())} of {config.steps} steps accepted)",
      worst,
      1.0,
    ),
    check(
      "Armijo: every step accepted within 30 halvings",
      int(accepted.sum()),
      f"{config.steps}",
      int(accepted.sum()) == config.steps,
    ),
    check_less("Armijo: largest one-step change of f", float(np.max(np.diff(arm.values))), 1e-6),
    check_less("naive halving: largest one-step change of f", naive_increase, 1e-6),
    check(
      "final f - f*: Armijo vs the safe fixed step",
      [finals["armijo"], finals[f"fixed {config.fixed[0]:g}"]],
      "Armijo lower",
      finals["armijo"] < finals[f"fixed {config.fixed[0]:g}"],
    ),
    check(
      f"final f - f* from {len(config.starts)} starts: Armijo below naive halving",
      wins,
      f">= {2 * len(config.starts) // 3} starts",
      wins >= 2 * len(config.starts) // 3,
    ),
    check(
      "fixed step above 2/L near the minimum does not converge (final f - f*)",
      finals[f"fixed {config.fixed[1]:g}"],
      "> 100 x Armijo's or not finite",
      not np.isfinite(finals[f"fixed {config.fixed[1]:g}"])
      or finals[f"fixed {config.fixed[1]:g}"] > 100 * finals["armijo"],
    ),
  ]
  data = {
    "final_gap": finals,
    "f_star": f_star,
    "armijo_steps": eta,
    "naive_steps": naive.states.learning_rate,
    "armijo_backtracks": arm.states.num_backtracking,
    "armijo_values": arm.values,
    "naive_values": naive.values,
    "fixed_values": [t.values for t in fixed],
    "fixed_etas": list(config.fixed),
    "armijo_path": arm.xs,
    "naive_path": naive.xs,
    "fixed_paths": [t.xs for t in fixed],
    "c": config.c,
    "starts": config.starts,
    "starts_final_armijo": out["starts_armijo"],
    "starts_final_naive": out["starts_naive"],
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 3, panel=(4.6, 4.0))
  ax = axes[0]
  U.contour(ax, rosenbrock, (-1.6, 1.6), (-0.6, 1.8), levels=25, minimum=(1, 1))
  runs = [
    ("Armijo", d["armijo_path"], d["armijo_values"], "tab:green"),
    ("naive halving", d["naive_path"], d["naive_values"], "tab:purple"),
  ]
  runs += [
    (f"fixed $\\eta$ = {e:g}", p, v, c)
    for e, p, v, c in zip(
      d["fixed_etas"], d["fixed_paths"], d["fixed_values"], ("tab:blue", "tab:red"), strict=True
    )
  ]
  for lab, path, _, col in runs:
    path = np.asarray(path)
    ok = np.all(np.isfinite(path), axis=1) & np.all(np.abs(path) < 3, axis=1)
    ax.plot(path[ok, 0], path[ok, 1], ".-", ms=2, lw=0.8, color=col, label=lab)
  ax.legend(fontsize=7, loc="lower right")
  ax.set_title("paths on Rosenbrock's valley (b = 10)")
  ax = axes[1]
  for lab, _, values, col in runs:
    values = np.asarray(values, np.float64)
    ax.semilogy(np.where(np.isfinite(values), values - d["f_star"], np.nan), color=col, label=lab)
  ax.set_xlabel("iteration k")
  ax.set_ylabel("$f(x_k) - f^*$")
  ax.set_ylim(1e-6, 1e3)
  ax.set_title("function value (fixed 0.03 diverges)")
  ax.legend(fontsize=7)
  ax = axes[2]
  ax.semilogy(d["armijo_steps"], ".", ms=3, color="tab:green", label=f"Armijo (c = {d['c']:g})")
  ax.semilogy(d["naive_steps"], ".", ms=3, color="tab:purple", label="naive halving")
  for e, col in zip(d["fixed_etas"], ("tab:blue", "tab:red"), strict=True):
    ax.axhline(e, color=col, lw=0.8, ls="--", label=f"fixed {e:g}")
  ax.set_xlabel("iteration k")
  ax.set_ylabel("accepted step size $\\eta_k$")
  ax.set_title("accepted steps")
  ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
