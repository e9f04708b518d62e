"""Newton's method vs gradient descent: quadratic vs linear convergence on a strongly convex
non-quadratic (L2-regularized logistic regression), and damped Newton (H + alpha I) on a
non-convex function where plain Newton converges to a saddle point.

  logistic: f(w) = 1/n sum_i log(1 + exp(-y_i <x_i, w>)) + lam/2 |w|^2, y_i in {-1, +1}.
  non-convex: f(x, y) = x^2/2 + y^4/4 - y^2/2, saddle at 0, minima (0, +-1). Started at
  (0.8, 0.3), where d^2f/dy^2 = 3y^2 - 1 < 0, plain Newton jumps to the stationary point of the
  local quadratic model, i.e. towards the saddle; H + alpha I with alpha = 2 is positive
  definite everywhere on the path and descends to a minimum.
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

NAME = "newton_vs_gd"
TITLE = "Newton's quadratic convergence vs GD's linear rate; damped Newton at a saddle"
CAPTION = (
  "Left: distance to the minimizer of an L2-regularized logistic loss (float64) for Newton "
  "(eta = 1) and GD (eta = 1/L); middle: Newton's correct digits -log10 |w_k - w*| double "
  "at each step, GD gains a constant number per step. Right: on f = x^2/2 + y^4/4 - y^2/2 "
  "plain Newton converges to the saddle (0, 0), damped Newton (H + 2 I) to the minimum (0, 1)."
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.num_points = 500
  c.dim = 10
  c.l2 = 0.02
  c.seed = 0
  c.newton_steps = 8
  c.gd_steps = 150
  c.damping = 2.0
  c.start = (0.8, 0.3)
  c.nonconvex_steps = 30
  return common.sized(size, c, test={"num_points": 200}, full={"num_points": 2000})


def logistic_problem(num_points: int, dim: int, l2: float, seed: int):
  """f(w) = `problems.logistic_loss` on `problems.logistic_data` (w_true ~ N(0, I)) and its
  smoothness L = lambda_max(X^T X) / (4N) + l2 (float64; call inside `jax.enable_x64`)."""
  x, y = problems.logistic_data(num_points, dim, seed, signal=None)
  smoothness = float(
    np.linalg.eigvalsh(np.asarray(x).T @ np.asarray(x))[-1] / (4 * num_points) + l2
  )
  return (lambda w: problems.logistic_loss(w, x, y, l2)), smoothness


def convergence_order(errors: np.ndarray, lo: float = 1e-13, hi: float = 1e-1) -> float:
  """Slope of log e_{k+1} against log e_k over pairs with both errors in [lo, hi]: the order
  q of e_{k+1} ~ C e_k^q (1: linear, 2: quadratic)."""
  e0, e1 = errors[:-1], errors[1:]
  keep = (e0 >= lo) & (e0 <= hi) & (e1 >= lo) & (e1 <= hi)
  if keep.sum() < 2:
    raise ValueError(
      f"convergence_order needs two pairs of errors in [{lo}, {hi}], got {errors}; run more steps"
    )
  return float(np.polyfit(np.log(e0[keep]), np.log(e1[keep]), 1)[0])


def _compute(config, f, smoothness):
  """All runs in one jitted function: w*, Newton and GD paths, the non-convex paths and the
  Hessian's smallest eigenvalue, |grad| and f at their limits."""
  w0 = jnp.zeros(config.dim)
  newton = optim.newton(1.0)
  extra = U.line_search_extra(f)
  g = problems.double_well
  x0 = jnp.asarray(config.start)
  extra_g = U.line_search_extra(g)

  def limit_stats(p):
    return (jnp.linalg.eigvalsh(jax.hessian(g)(p))[0], jnp.linalg.norm(jax.grad(g)(p)), g(p))

  w_star = U.optimize(newton, f, w0, config.newton_steps + 10, extra=extra).xs[-1]
  plain = U.optimize(optim.newton(1.0), g, x0, config.nonconvex_steps, extra=extra_g).xs
  damped = U.optimize(
    optim.newton(1.0, config.damping), g, x0, config.nonconvex_steps, extra=extra_g
  ).xs
  return {
    "w_star": w_star,
    "grad_star": jnp.linalg.norm(jax.grad(f)(w_star)),
    "newton": U.optimize(newton, f, w0, config.newton_steps, extra=extra).xs,
    "gd": U.optimize(optim.sgd(1.0 / smoothness), f, w0, config.gd_steps).xs,
    "plain": plain,
    "damped": damped,
    "plain_stats": limit_stats(plain[-1]),
    "damped_stats": limit_stats(damped[-1]),
  }


def run(config) -> FigureResult:
  with jax.enable_x64(True):
    f, smoothness = logistic_problem(config.num_points, config.dim, config.l2, config.seed)
    out = jax.tree.map(np.asarray, jax.jit(lambda: _compute(config, f, smoothness))())
  floor = 1e-15
  newton_err = np.maximum(np.linalg.norm(out["newton"] - out["w_star"], axis=1), floor)
  gd_err = np.maximum(np.linalg.norm(out["gd"] - out["w_star"], axis=1), floor)
  plain, damped = out["plain"], out["damped"]
  hess_min, grad_norm, values = zip(out["plain_stats"], out["damped_stats"], strict=True)
  hess_min, grad_norm, values = ([float(v) for v in t] for t in (hess_min, grad_norm, values))
  grad_star = float(out["grad_star"])
  q_newton = convergence_order(newton_err)
  q_gd = convergence_order(gd_err, lo=1e-10)
  digits = -np.log10(newton_err)
  gain = digits[1:] / np.maximum(digits[:-1], 1e-12)
  doubling = gain[(digits[:-1] >= 1.0) & (digits[1:] <= 14.0)]
  in_range = np.flatnonzero((gd_err > 1e-12) & (gd_err < 1e-2))
  rho_gd = U.linear_rate(gd_err[in_range], in_range)
  checks = [
    check_close("Newton: order q of e_{k+1} ~ e_k^q (logistic loss)", q_newton, 2.0, rtol=0.2),
    check(
      "Newton: correct digits d_{k+1} / d_k while 1 <= d <= 14",
      np.round(doubling, 2),
      ">= 1.7 each (doubling)",
      doubling.size >= 2 and bool(np.all(doubling >= 1.7)),
    ),
    check_close("GD: order q (linear convergence)", q_gd, 1.0, rtol=0.1),
    check(
      "plain Newton: smallest Hessian eigenvalue and |grad| at its limit",
      [hess_min[0], grad_norm[0]],
      "< 0 and < 1e-8 (a saddle point)",
      hess_min[0] < 0 and grad_norm[0] < 1e-8,
    ),
    check(
      "damped Newton (H + alpha I): smallest Hessian eigenvalue and f at its limit",
      [hess_min[1], values[1]],
      "> 0 and -0.25 (the minimum)",
      hess_min[1] > 0 and abs(values[1] + 0.25) < 1e-8,
    ),
    check_greater("plain Newton's f minus damped Newton's f", values[0] - values[1], 0.2),
  ]
  data = {
    "newton_errors": newton_err,
    "gd_errors": gd_err,
    "newton_digits": digits,
    "order_newton": q_newton,
    "order_gd": q_gd,
    "gd_rate": rho_gd,
    "grad_norm_at_w_star": grad_star,
    "plain_path": plain,
    "damped_path": damped,
    "plain_limit": plain[-1],
    "damped_limit": damped[-1],
    "damping": config.damping,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 3, panel=(4.6, 4.0))
  newton_err, gd_err = np.asarray(d["newton_errors"]), np.asarray(d["gd_errors"])
  ax = axes[0]
  ax.semilogy(newton_err, "o-", label=f"Newton (order {d['order_newton']:.2f})")
  ax.semilogy(
    np.where(gd_err > 1e-15, gd_err, np.nan), label=f"GD, $\\eta = 1/L$ (order {d['order_gd']:.2f})"
  )
  ax.set_xlabel("iteration k")
  ax.set_ylabel("$|w_k - w^*|$")
  ax.set_title("regularized logistic regression")
  ax.legend(fontsize=8)
  ax = axes[1]
  k = np.arange(len(newton_err))
  ax.bar(k - 0.2, d["newton_digits"], width=0.4, label="Newton")
  ax.bar(k + 0.2, -np.log10(gd_err[: len(k)]), width=0.4, label="GD")
  ax.set_xlabel("iteration k")
  ax.set_ylabel("correct digits $-\\log_{10} |w_k - w^*|$")
  ax.set_title("Newton doubles the correct digits")
  ax.legend(fontsize=8)
  ax = axes[2]
  U.contour(ax, problems.double_well, (-1.2, 1.2), (-1.5, 1.5), levels=25, log=False)
  for path, lab, col in (
    (d["plain_path"], "plain Newton", "tab:red"),
    (d["damped_path"], f"damped Newton, $H + {d['damping']:g} I$", "tab:green"),
  ):
    path = np.asarray(path)
    ax.plot(path[:, 0], path[:, 1], "o-", ms=3, color=col, label=lab)
  ax.plot([0], [0], "kx", ms=10, label="saddle")
  ax.plot([0, 0], [-1, 1], "k*", ms=10, linestyle="none", label="minima")
  ax.set_title("$f = x^2/2 + y^4/4 - y^2/2$")
  ax.legend(fontsize=8, loc="lower left")
  return [common.save_figure(fig, out_dir, NAME)]
