"""The lecture's table of convergence rates, regenerated from measurements.

| class of function        | GD               | NAG                        |
| smooth                   | O(1/T)           | O(1/T^2)                   |
| smooth, strongly convex  | O(exp(-T/kappa)) | O(exp(-T / sqrt(kappa)))   |

Measured on the quadratics of `convergence_rates` (`_optim_utils.smooth_runs` and
`strongly_convex_runs`): for the smooth class the exponent p of
f(x_T) - f* ~ T^p; for the strongly convex class the iterations T_eps to reach
(f - f*) / (f_0 - f*) <= eps for several kappa, whose log-log slope against kappa is 1 for a
rate exp(-c T / kappa) and 1/2 for exp(-c T / sqrt(kappa)), and the constants
c = -kappa log(rho) (GD) and -sqrt(kappa) log(rho) (NAG), which the bounds require to be >= 1.
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np

from experiments.figures import _optim_utils as U
from experiments.figures import common
from experiments.figures.common import FigureResult, check, check_close

NAME = "rate_table"
TITLE = "The rate table (smooth / strongly convex x GD / NAG), fitted vs theory"
CAPTION = (
  "Iterations to reach (f - f*)/(f_0 - f*) <= 1e-8 against kappa on log-log axes (left) and "
  "the per-step exponent -log(rho) against kappa (right), for GD (eta = 1/L) and NAG "
  "(beta = (sqrt(kappa)-1)/(sqrt(kappa)+1)). The lecture's table, regenerated from these "
  "fits and from the smooth-case slopes of `convergence_rates`:"
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.kappas = (10.0, 30.0, 100.0, 300.0, 1000.0)
  c.dim = 100
  c.tol = 1e-8
  c.smooth_dim = 400
  c.smooth_smallest = 1e-8
  c.smooth_steps = 2000
  c.fit_from = 30
  return common.sized(
    size,
    c,
    test={"kappas": (10.0, 100.0, 1000.0), "smooth_steps": 1000},
    full={"kappas": (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0), "smooth_steps": 10000},
  )


def _table(rows: list[tuple[str, str, str, str, str]]) -> str:
  lines = [
    "| class of function | method | theory | fitted | measured quantity |",
    "|---|---|---|---|---|",
  ]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return "\n".join(lines)


def run(config) -> FigureResult:
  kappas = np.asarray(config.kappas, np.float64)
  iters = {"gd": [], "nag": []}
  rates = {"gd": [], "nag": []}
  with jax.enable_x64(True):
    sm = U.smooth_runs(config.smooth_dim, config.smooth_smallest, config.smooth_steps)
    for kappa in kappas:
      steps = int(2.5 * kappa * np.log(1 / config.tol)) + 50  # GD needs about kappa/2 log(1/eps)
      sc = U.strongly_convex_runs(kappa, config.dim, steps)
      for m in ("gd", "nag"):
        iters[m].append(U.iterations_to(sc[m] / sc[m][0], config.tol))
        rates[m].append(U.tail_rate(sc[m]))
  k = U.fit_window(config.fit_from, config.smooth_steps)
  p_gd, p_nag = U.loglog_slope(k, sm["gd"][k]), U.loglog_slope(k, sm["nag"][k])
  s_gd, s_nag = U.loglog_slope(kappas, iters["gd"]), U.loglog_slope(kappas, iters["nag"])
  c_gd = -kappas * np.log(rates["gd"])
  c_nag = -np.sqrt(kappas) * np.log(rates["nag"])
  table = _table(
    [
      ("smooth", "GD", "O(1/T): exponent -1", f"{p_gd:.3f}", "slope of log(f - f*) vs log T"),
      ("smooth", "NAG", "O(1/T^2): exponent -2", f"{p_nag:.3f}", "slope of log(f - f*) vs log T"),
      (
        "smooth & strongly convex",
        "GD",
        "O(exp(-T/kappa)): T_eps ~ kappa^1",
        f"{s_gd:.3f}",
        f"slope of log T_eps vs log kappa, kappa in {kappas.min():g}..{kappas.max():g}",
      ),
      (
        "smooth & strongly convex",
        "NAG",
        "O(exp(-T/sqrt(kappa))): T_eps ~ kappa^0.5",
        f"{s_nag:.3f}",
        "slope of log T_eps vs log kappa",
      ),
      (
        "smooth & strongly convex",
        "GD",
        "c = -kappa log(rho) >= 1",
        ", ".join(f"{c:.2f}" for c in c_gd),
        "per kappa",
      ),
      (
        "smooth & strongly convex",
        "NAG",
        "c = -sqrt(kappa) log(rho) >= 1",
        ", ".join(f"{c:.2f}" for c in c_nag),
        "per kappa",
      ),
    ]
  )
  checks = [
    check_close("smooth, GD: fitted exponent of T", p_gd, -1.0, rtol=0.1),
    check_close("smooth, NAG: fitted exponent of T", p_nag, -2.0, rtol=0.1),
    check_close("strongly convex, GD: slope of log T_eps vs log kappa", s_gd, 1.0, rtol=0.15),
    check_close("strongly convex, NAG: slope of log T_eps vs log kappa", s_nag, 0.5, rtol=0.2),
    check(
      "strongly convex: min over kappa of c_GD and c_NAG (bounds need >= 1)",
      [float(c_gd.min()), float(c_nag.min())],
      ">= 1 each",
      c_gd.min() >= 1.0 and c_nag.min() >= 1.0,
    ),
  ]
  data = {
    "table": table,
    "kappas": kappas,
    "iterations_gd": iters["gd"],
    "iterations_nag": iters["nag"],
    "rates_gd": rates["gd"],
    "rates_nag": rates["nag"],
    "smooth_exponent_gd": p_gd,
    "smooth_exponent_nag": p_nag,
    "kappa_slope_gd": s_gd,
    "kappa_slope_nag": s_nag,
    "c_gd": c_gd,
    "c_nag": c_nag,
  }
  return FigureResult(NAME, TITLE, CAPTION + "\n\n" + table, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  kappas = np.asarray(d["kappas"])
  fig, axes = common.subplots(1, 2, panel=(5.5, 4.0))
  ax = axes[0]
  for m, lab, slope in (("gd", "GD", d["kappa_slope_gd"]), ("nag", "NAG", d["kappa_slope_nag"])):
    ax.loglog(kappas, d[f"iterations_{m}"], "o-", label=f"{lab}: T ~ $\\kappa^{{{slope:.2f}}}$")
  ax.loglog(
    kappas, kappas * d["iterations_gd"][0] / kappas[0], "k--", lw=0.8, label="$\\propto \\kappa$"
  )
  ax.loglog(
    kappas,
    np.sqrt(kappas / kappas[0]) * d["iterations_nag"][0],
    "k:",
    lw=0.8,
    label="$\\propto \\sqrt{\\kappa}$",
  )
  ax.set_xlabel("condition number $\\kappa = L/\\mu$")
  ax.set_ylabel("iterations to $(f - f^*)/(f_0 - f^*) \\leq 10^{-8}$")
  ax.set_title("strongly convex: GD $O(\\kappa)$ vs NAG $O(\\sqrt{\\kappa})$ iterations")
  ax.legend(fontsize=8)
  ax = axes[1]
  ax.loglog(kappas, -np.log(d["rates_gd"]), "o-", label="GD: $-\\log \\rho$")
  ax.loglog(kappas, -np.log(d["rates_nag"]), "o-", label="NAG: $-\\log \\rho$")
  ax.loglog(kappas, 1 / kappas, "k--", lw=0.8, label="bound $1/\\kappa$ (exp(-T/$\\kappa$))")
  ax.loglog(
    kappas,
    1 / np.sqrt(kappas),
    "k:",
    lw=0.8,
    label="bound $1/\\sqrt{\\kappa}$ (exp(-T/$\\sqrt{\\kappa}$))",
  )
  ax.set_xlabel("condition number $\\kappa$")
  ax.set_ylabel("per-step exponent $-\\log \\rho$")
  ax.set_title(
    f"per-step exponent (smooth-case T-exponents: GD {d['smooth_exponent_gd']:.2f}, "
    f"NAG {d['smooth_exponent_nag']:.2f})",
    fontsize=10,
  )
  ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
