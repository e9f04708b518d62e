"""Shared pieces of the optimization figures (part 1): a scanned optimizer loop, test
functions, rate fits and plotting helpers.

    trace = optimize(research.optim.sgd(0.1), fun, x0, num_steps=100)
    trace.xs      # (num_steps + 1, d) iterates x_0 ... x_K
    trace.values  # (num_steps + 1,)   f(x_0) ... f(x_K)

Every step is `updates, state = tx.update(g, state, x, **extra)`, `x = x + updates`: the rule
is whatever optax transformation the caller passes (normally from `research.optim`).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.figures.common import save_figure

Array = jax.Array
Fun = Callable[[Array], Array]


class Trace(NamedTuple):
  """Iterates and values of one optimizer run."""

  xs: Array      # (K + 1, d) iterates, x_0 first
  values: Array  # (K + 1,)   f at each iterate
  states: object = None  # with record_states: the optimizer state after each step, stacked (K,)


def optimize(tx: optax.GradientTransformation, fun: Fun, x0: Array, num_steps: int, *,
             grad_fn: Callable[[Array, Array], Array] | None = None,
             key: Array | None = None,
             extra: Callable[[Array, Array, Array], dict] | None = None,
             record_states: bool = False) -> Trace:
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


# ---------------------------------------------------------------------------------- problems


def quadratic(eigenvalues: Array) -> Fun:
  """f(x) = 1/2 sum_i lambda_i x_i^2: L = max lambda, mu = min lambda, minimum 0 at 0."""
  lam = jnp.asarray(eigenvalues)
  return lambda x: 0.5 * jnp.sum(lam * x * x)


def spectrum(n: int, smallest: float, largest: float) -> np.ndarray:
  """n eigenvalues spaced evenly on a log scale in [smallest, largest] (float64)."""
  return np.geomspace(smallest, largest, n)


def beale(p: Array) -> Array:
  """Beale's function; minimum 0 at (3, 0.5)."""
  x, y = p[0], p[1]
  return ((1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
          + (2.625 - x + x * y ** 3) ** 2)


def double_well(p: Array) -> Array:
  """f(x, y) = x^2 / 2 + y^4 / 4 - y^2 / 2: a saddle at 0, minima -1/4 at (0, +-1)."""
  x, y = p[0], p[1]
  return 0.5 * x ** 2 + 0.25 * y ** 4 - 0.5 * y ** 2


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


def iterations_to(y: np.ndarray, tol: float) -> float:
  """First index k with y_k <= tol; inf when never reached."""
  hit = np.flatnonzero(np.asarray(y) <= tol)
  return float(hit[0]) if hit.size else math.inf


def bisect(diverges: Callable[[float], bool], lo: float, hi: float, iters: int = 40) -> float:
  """The boundary between `diverges(lo) == False` and `diverges(hi) == True`, by bisection."""
  if diverges(lo) or not diverges(hi):
    raise ValueError(f"bisect needs diverges({lo})=False and diverges({hi})=True; widen the "
                     "bracket")
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    lo, hi = (lo, mid) if diverges(mid) else (mid, hi)
  return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------------- plotting


def grid_values(fun: Fun, xlim: tuple[float, float], ylim: tuple[float, float],
                n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def save(fig, out_dir, name: str) -> pathlib.Path:
  """Lays out `fig` and saves it as out_dir/name.png (part 1's size), closing it."""
  fig.tight_layout()
  return save_figure(fig, out_dir, name, dpi=110)


def figure(ncols: int, nrows: int = 1, width: float = 5.0, height: float = 4.0):
  """A matplotlib figure with the Agg backend (no display needed)."""
  import matplotlib  # noqa: PLC0415

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
