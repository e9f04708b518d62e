"""Shared pieces of the optimization figures (part 1): a scanned optimizer loop, the GD / NAG
runs on the quadratics of `convergence_rates` and `rate_table`, rate fits and contour plots.
The test functions themselves are in `experiments.figures.problems`.

    trace = optimize(research.optim.sgd(0.1), fun, x0, num_steps=100)
    trace.xs      # (num_steps + 1, d) iterates x_0 ... x_K
    trace.values  # (num_steps + 1,)   f(x_0) ... f(x_K)

Every step is `updates, state = tx.update(g, state, x, **extra)`, `x = x + updates`: the rule
is whatever optax transformation the caller passes (normally from `research.optim`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.figures import problems
from research import optim

Array = jax.Array
Fun = Callable[[Array], Array]


class Trace(NamedTuple):
  """Iterates and values of one optimizer run."""

  xs: Array  # (K + 1, d) iterates, x_0 first
  values: Array  # (K + 1,)   f at each iterate
  states: object = None  # with record_states: the optimizer state after each step, stacked (K,)


def optimize(
  tx: optax.GradientTransformation,
  fun: Fun,
  x0: Array,
  num_steps: int,
  *,
  grad_fn: Callable[[Array, Array], Array] | None = None,
  key: Array | None = None,
  extra: Callable[[Array, Array, Array], dict] | None = None,
  record_states: bool = False,
) -> Trace:
  """Runs `num_steps` steps of `tx` on `fun` from `x0` inside one `lax.scan`.

  x_{k+1} = x_k + u_k,   (u_k, s_{k+1}) = tx.update(g_k, s_k, x_k, **extra(x_k, f(x_k), g_k))

  Args:
    tx: the rule; a `GradientTransformationExtraArgs` when `extra` is given.
    fun: f: (d,) -> () the objective (its exact value is recorded at every iterate).
    x0: (d,) starting point.
    num_steps: K, the number of updates.
    grad_fn: g(x, key) -> (d,), a stochastic gradient; default the exact gradient of `fun`.
    key: PRNG key split once per step for `grad_fn` (required with `grad_fn`).
    extra: (x, f(x), g) -> keyword arguments for `tx.update` (e.g. `value=`, `value_fn=`).
    record_states: also return the state after every step (e.g. accepted line-search steps).

  Returns:
    A `Trace` of K + 1 iterates and values. Jit the caller to compile once.
  """
  if grad_fn is not None and key is None:
    raise ValueError("optimize(grad_fn=...) needs key=jax.random.key(seed) for its noise")
  keys = jax.random.split(key if key is not None else jax.random.key(0), num_steps)
  value_and_grad = jax.value_and_grad(fun)

  def step(carry, k):
    x, state = carry
    if grad_fn is None:
      value, g = value_and_grad(x)
    else:
      value, g = fun(x), grad_fn(x, k)
    kwargs = extra(x, value, g) if extra is not None else {}
    updates, state = tx.update(g, state, x, **kwargs)
    return (optax.apply_updates(x, updates), state), (x, value, state if record_states else None)

  (x_last, _), (xs, values, states) = jax.lax.scan(step, (x0, tx.init(x0)), keys)
  return Trace(jnp.concatenate([xs, x_last[None]]), jnp.append(values, fun(x_last)), states)


def line_search_extra(fun: Fun) -> Callable[[Array, Array, Array], dict]:
  """`extra` for rules that take `value=, grad=, value_fn=` (armijo, newton)."""
  return lambda x, value, g: {"value": value, "grad": g, "value_fn": fun}


def newton_minimizer(fun: Fun, x0: Array, steps: int = 15) -> Array:
  """x* of a smooth strongly convex `fun` (d,) -> (): `steps` undamped Newton steps from x0
  (`research.optim.newton`), to machine precision for the logistic losses here. Jit the
  caller."""
  return optimize(optim.newton(1.0), fun, x0, steps, extra=line_search_extra(fun)).xs[-1]


# ----------------------------------------------- GD vs NAG (convergence_rates, rate_table)


def nag_schedule(count):
  """beta_k = k / (k + 3): the momentum schedule of the O(1/k^2) method."""
  return count / (count + 3.0)


def smooth_runs(dim: int, smallest: float, steps: int) -> dict:
  """GD and NAG (beta_k = k/(k+3)), eta = 1/L = 1, on the smooth quadratic with eigenvalues
  `problems.spectrum(dim, smallest, 1)` from x_0 = 1; values (steps + 1,) each, R^2 = |x_0|^2."""
  lam = jnp.asarray(problems.spectrum(dim, smallest, 1.0))
  f, x0 = problems.quadratic(lam), jnp.ones(dim)
  nag = optax.inject_hyperparams(optim.nesterov)(learning_rate=1.0, beta=nag_schedule)
  run = jax.jit(
    lambda: (optimize(optim.sgd(1.0), f, x0, steps).values, optimize(nag, f, x0, steps).values)
  )
  gd_values, nag_values = run()
  return {"gd": np.asarray(gd_values), "nag": np.asarray(nag_values), "R2": float(dim), "L": 1.0}


def strongly_convex_runs(kappa: float, dim: int, steps: int) -> dict:
  """GD and NAG (constant beta = (sqrt(kappa) - 1) / (sqrt(kappa) + 1)) with eta = 1/L on the
  quadratic with eigenvalues `problems.spectrum(dim, 1/kappa, 1)` from x_0 = 1."""
  lam = jnp.asarray(problems.spectrum(dim, 1.0 / kappa, 1.0))
  f, x0 = problems.quadratic(lam), jnp.ones(dim)
  beta = (np.sqrt(kappa) - 1.0) / (np.sqrt(kappa) + 1.0)
  run = jax.jit(
    lambda: (
      optimize(optim.sgd(1.0), f, x0, steps).values,
      optimize(optim.nesterov(1.0, beta), f, x0, steps).values,
    )
  )
  gd_values, nag_values = run()
  return {
    "gd": np.asarray(gd_values),
    "nag": np.asarray(nag_values),
    "beta": beta,
    "R2": float(dim),
    "mu": 1.0 / kappa,
  }


# -------------------------------------------------------------------------------------- fits


def loglog_slope(k: np.ndarray, y: np.ndarray) -> float:
  """Least-squares slope of log y against log k (the exponent p of y ~ k^p)."""
  k, y = np.asarray(k, np.float64), np.asarray(y, np.float64)
  return float(np.polyfit(np.log(k), np.log(y), 1)[0])


def linear_rate(y: np.ndarray, k: np.ndarray | None = None) -> float:
  """The per-step factor rho of y ~ C rho^k, fitted to log y by least squares."""
  y = np.asarray(y, np.float64)
  k = np.arange(len(y)) if k is None else np.asarray(k, np.float64)
  return float(np.exp(np.polyfit(k, np.log(y), 1)[0]))


def fit_window(lo: int, hi: int, num: int = 60) -> np.ndarray:
  """Log-spaced integer iterations in [lo, hi] at which slopes are fitted."""
  return np.unique(np.geomspace(lo, hi, num).astype(int))


def tail_rate(values: np.ndarray, floor: float = 1e-13) -> float:
  """Per-step factor fitted on the second half of the run above `floor` (relative to f_0)."""
  rel = values / values[0]
  stop = iterations_to(rel, floor)
  stop = int(stop) if np.isfinite(stop) else len(rel)
  return linear_rate(rel[stop // 2 : stop], np.arange(stop // 2, stop))


def iterations_to(y: np.ndarray, tol: float) -> float:
  """First index k with y_k <= tol; inf when never reached."""
  hit = np.flatnonzero(np.asarray(y) <= tol)
  return float(hit[0]) if hit.size else math.inf


def bisect(diverges: Callable[[float], bool], lo: float, hi: float, iters: int = 40) -> float:
  """The boundary between `diverges(lo) == False` and `diverges(hi) == True`, by bisection."""
  if diverges(lo) or not diverges(hi):
    raise ValueError(
      f"bisect needs diverges({lo})=False and diverges({hi})=True; widen the bracket"
    )
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    lo, hi = (lo, mid) if diverges(mid) else (mid, hi)
  return 0.5 * (lo + hi)


# ----------------------------------------------------------------------------- contour plots


def grid_values(
  fun: Fun, xlim: tuple[float, float], ylim: tuple[float, float], n: int = 200
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(X, Y, Z) on an n x n grid for a contour plot of a 2-d `fun`."""
  xs, ys = np.linspace(*xlim, n), np.linspace(*ylim, n)
  xx, yy = np.meshgrid(xs, ys)
  pts = jnp.stack([jnp.asarray(xx.ravel()), jnp.asarray(yy.ravel())], axis=1)
  zz = np.asarray(jax.jit(jax.vmap(fun))(pts)).reshape(xx.shape)
  return xx, yy, zz


def contour(ax, fun: Fun, xlim, ylim, *, levels: int = 25, log: bool = True, minimum=None):
  """Draws the level sets of a 2-d `fun` on `ax` (log-spaced when `log`)."""
  xx, yy, zz = grid_values(fun, xlim, ylim)
  if log:
    lo = np.min(zz)
    shifted = zz - lo + 1e-6 * (np.max(zz) - lo) + 1e-12
    ax.contour(xx, yy, np.log10(shifted), levels=levels, cmap="viridis", linewidths=0.7)
  else:
    ax.contour(xx, yy, zz, levels=levels, cmap="viridis", linewidths=0.7)
  if minimum is not None:
    ax.plot(*minimum, marker="*", color="k", markersize=12, linestyle="none")
  ax.set_xlim(*xlim)
  ax.set_ylim(*ylim)
  ax.set_xlabel("$x_1$")
  ax.set_ylabel("$x_2$")
