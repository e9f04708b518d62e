"""GD vs Nesterov's accelerated gradient on an L-smooth convex function and on a mu-strongly
convex one: O(1/k) vs O(1/k^2), and (1 - mu/L)^k vs exp(-k / sqrt(kappa)).

Both problems are quadratics f(x) = 1/2 sum_i lambda_i x_i^2 (minimum 0 at 0) from x_0 = 1:
  * smooth: lambda_i spaced evenly on a log scale over [1e-8 L, L]. Each decade holds the same
    share of f_0, so GD after k steps has removed the modes lambda > L/k and keeps about
    f_0 / k: the O(1/k) of the lecture is what GD does, not only a bound. NAG uses the
    schedule beta_k = k / (k + 3).
  * strongly convex: lambda_i on [mu, L], kappa = L / mu; NAG with the constant
    beta = (sqrt(kappa) - 1) / (sqrt(kappa) + 1). Both with eta = 1/L.
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from experiments.figures import _optim_utils as U
from experiments.figures import common
from experiments.figures.common import FigureResult, check, check_close, check_less

NAME = "convergence_rates"
TITLE = "Convergence rates of GD and Nesterov (NAG): smooth vs strongly convex"
CAPTION = (
  "Left: an L-smooth convex quadratic whose spectrum reaches 1e-8 L; f(x_k) - f* on log-log "
  "axes with fitted slopes (lecture: GD O(1/k), NAG O(1/k^2)) and the bounds L R^2 / 2k and "
  "2 L R^2 / (k+1)^2. Right: a strongly convex quadratic with kappa = L/mu; the lecture's bound "
  "(1 - mu/L)^k for GD and exp(-k / sqrt(kappa)) for NAG, with the fitted per-step rates."
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.dim = 400  # eigenvalues of the smooth problem
  c.smallest = 1e-8  # lambda_min / L of the smooth problem
  c.smooth_steps = 2000
  c.fit_from = 30  # fit slopes over k in [fit_from, smooth_steps]
  c.kappa = 100.0
  c.strong_dim = 100
  c.strong_steps = 1500
  return common.sized(
    size,
    c,
    test={"smooth_steps": 1000, "strong_steps": 800},
    full={"smooth_steps": 10000, "strong_steps": 3000},
  )


def run(config) -> FigureResult:
  with jax.enable_x64(True):
    sm = U.smooth_runs(config.dim, config.smallest, config.smooth_steps)
    sc = U.strongly_convex_runs(config.kappa, config.strong_dim, config.strong_steps)
  k = U.fit_window(config.fit_from, config.smooth_steps)
  slope_gd, slope_nag = U.loglog_slope(k, sm["gd"][k]), U.loglog_slope(k, sm["nag"][k])
  ks = np.arange(1, config.smooth_steps + 1)
  gd_bound_ratio = float(np.max(sm["gd"][1:] / (sm["L"] * sm["R2"] / (2 * ks))))
  nag_bound_ratio = float(np.max(sm["nag"][1:] / (2 * sm["L"] * sm["R2"] / (ks + 1) ** 2)))
  kappa, mu = config.kappa, sc["mu"]
  rho_gd, rho_nag = U.tail_rate(sc["gd"]), U.tail_rate(sc["nag"])
  kk = np.arange(config.strong_steps + 1)
  rel_gd = sc["gd"] / sc["gd"][0]
  gd_linear_ratio = float(np.max(rel_gd[1:] / (1 - mu) ** kk[1:]))
  nag_start = sc["nag"][0] + 0.5 * mu * sc["R2"]
  nag_linear_ratio = float(np.max(sc["nag"][1:] / (nag_start * (1 - np.sqrt(mu)) ** kk[1:])))
  checks = [
    check_close("smooth: fitted log-log slope of GD's f - f*", slope_gd, -1.0, rtol=0.1),
    check_close("smooth: fitted log-log slope of NAG's f - f*", slope_nag, -2.0, rtol=0.1),
    check_less("smooth: max_k (f_k - f*) / (L R^2 / 2k), GD", gd_bound_ratio, 1.0),
    check_less("smooth: max_k (f_k - f*) / (2 L R^2 / (k+1)^2), NAG", nag_bound_ratio, 1.0),
    check(
      "strongly convex: GD's fitted per-step rate vs the bound 1 - mu/L",
      rho_gd,
      f"<= {1 - mu:.6g}",
      rho_gd <= 1 - mu,
    ),
    check(
      "strongly convex: NAG's fitted per-step rate vs exp(-1/sqrt(kappa))",
      rho_nag,
      f"<= {np.exp(-1 / np.sqrt(kappa)):.6g}",
      rho_nag <= np.exp(-1 / np.sqrt(kappa)),
    ),
    check_less(
      "strongly convex: max_k (f_k - f*) / ((1 - mu/L)^k (f_0 - f*)), GD",
      gd_linear_ratio,
      1.0 + 1e-9,
    ),
    check_less(
      "strongly convex: max_k (f_k - f*) / ((1 - 1/sqrt(kappa))^k (f_0 - f* + mu R^2/2)), NAG",
      nag_linear_ratio,
      1.0 + 1e-9,
    ),
    check_close(
      "strongly convex: speed-up log(rho_NAG) / log(rho_GD) vs sqrt(kappa)",
      float(np.log(rho_nag) / np.log(rho_gd)),
      float(np.sqrt(kappa)),
      rtol=0.5,
    ),
  ]
  data = {
    "smooth_slope_gd": slope_gd,
    "smooth_slope_nag": slope_nag,
    "kappa": kappa,
    "rate_gd": rho_gd,
    "rate_nag": rho_nag,
    "bound_gd": 1 - mu,
    "bound_nag": float(np.exp(-1 / np.sqrt(kappa))),
    "smooth_gd": sm["gd"],
    "smooth_nag": sm["nag"],
    "smooth_R2": sm["R2"],
    "strong_gd": sc["gd"],
    "strong_nag": sc["nag"],
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 2, panel=(5.5, 4.0))
  ax = axes[0]
  gd, nag = np.asarray(d["smooth_gd"]), np.asarray(d["smooth_nag"])
  k = np.arange(1, len(gd))
  ax.loglog(k, gd[1:], label=f"GD (fitted slope {d['smooth_slope_gd']:.2f})")
  ax.loglog(k, nag[1:], label=f"NAG (fitted slope {d['smooth_slope_nag']:.2f})")
  ax.loglog(k, d["smooth_R2"] / (2 * k), "k--", lw=0.8, label="bound $L R^2 / 2k$")
  ax.loglog(k, 2 * d["smooth_R2"] / (k + 1) ** 2, "k:", lw=0.8, label="bound $2 L R^2 / (k+1)^2$")
  ax.set_ylim(min(nag[-1], gd[-1]) / 3, gd[0] * 30)
  ax.set_xlabel("iteration k")
  ax.set_ylabel("$f(x_k) - f^*$")
  ax.set_title("L-smooth convex: O(1/k) vs O(1/k$^2$)")
  ax.legend(fontsize=8)
  ax = axes[1]
  gd, nag = np.asarray(d["strong_gd"]), np.asarray(d["strong_nag"])
  kk = np.arange(len(gd))
  kappa = d["kappa"]
  ax.semilogy(kk, gd / gd[0], label=f"GD (rate {d['rate_gd']:.4f})")
  ax.semilogy(kk, nag / nag[0], label=f"NAG (rate {d['rate_nag']:.4f})")
  ax.semilogy(kk, (1 - 1 / kappa) ** kk, "k--", lw=0.8, label="$(1 - \\mu/L)^k$")
  ax.semilogy(kk, np.exp(-kk / np.sqrt(kappa)), "k:", lw=0.8, label="$\\exp(-k/\\sqrt{\\kappa})$")
  ax.set_ylim(1e-16, 2)
  ax.set_xlabel("iteration k")
  ax.set_ylabel("$(f(x_k) - f^*) / (f(x_0) - f^*)$")
  ax.set_title(f"strongly convex, $\\kappa$ = {kappa:g}: linear rates")
  ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
