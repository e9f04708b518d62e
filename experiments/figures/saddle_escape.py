"""Escaping a saddle point: f(x, y) = x^2/2 + y^4/4 - y^2/2 has a saddle at 0 (f = 0) and
minima (0, +-1) (f = -1/4).

  * GD from (1, 0), on the ridge y = 0: the gradient never has a y component, GD converges to
    the saddle and stays.
  * GD from (1, 1e-6): y grows by (1 + eta) per step near the saddle, so GD lingers about
    log(1e6) / log(1 + eta) steps on the plateau f ~ 0 before it escapes.
  * SGD from (1, 0): the same steps with gradient noise N(0, sigma^2 I) escape at once.
  * heavy ball (beta = 0.9) from (1, 1e-6): y grows by about 1 + eta / (1 - beta) per step.
The lecture: noise of mini-batches (and momentum) helps to leave saddle points.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_less
from research import optim

NAME = "saddle_escape"
TITLE = "Escaping a saddle point: GD stalls, gradient noise (SGD) and momentum escape"
CAPTION = (
  "f = x^2/2 + y^4/4 - y^2/2: saddle at (0, 0), minima at (0, +-1). GD started on the ridge "
  "converges to the saddle; GD started 1e-6 off it stalls on the plateau for hundreds of "
  "steps; SGD (gradient noise, several seeds) and heavy-ball momentum leave quickly. Escape "
  "time: the first step with |y| > 0.5."
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.eta = 0.05
  c.beta = 0.9
  c.noise = 0.03
  c.offset = 1e-6
  c.steps = 600
  c.seeds = 16
  return common.sized(size, c, test={"seeds": 8}, full={"seeds": 64})


def escape_time(ys: np.ndarray) -> float:
  """First step with |y| > 0.5 (inf when never)."""
  return U.iterations_to(-np.abs(ys), -0.5)


def _compute(config):
  f = problems.double_well
  on_ridge = jnp.array([1.0, 0.0])
  near = jnp.array([1.0, config.offset])
  gd_ridge = U.optimize(optim.sgd(config.eta), f, on_ridge, config.steps)
  gd_near = U.optimize(optim.sgd(config.eta), f, near, config.steps)
  momentum = U.optimize(optim.heavy_ball(config.eta, config.beta), f, near, config.steps)

  def noisy_grad(x, key):
    return jax.grad(f)(x) + config.noise * jax.random.normal(key, x.shape, x.dtype)

  sgd = jax.vmap(
    lambda key: U.optimize(
      optim.sgd(config.eta), f, on_ridge, config.steps, grad_fn=noisy_grad, key=key
    )
  )(jax.random.split(jax.random.key(0), config.seeds))
  grad_at_end = jnp.linalg.norm(jax.grad(f)(gd_ridge.xs[-1]))
  return {
    "gd_ridge": gd_ridge,
    "gd_near": gd_near,
    "momentum": momentum,
    "sgd": sgd,
    "gd_ridge_grad": grad_at_end,
  }


def run(config) -> FigureResult:
  with jax.enable_x64(True):
    out = jax.tree.map(np.asarray, jax.jit(lambda: _compute(config))())
  t_ridge = escape_time(out["gd_ridge"].xs[:, 1])
  t_gd = escape_time(out["gd_near"].xs[:, 1])
  t_mom = escape_time(out["momentum"].xs[:, 1])
  t_sgd = np.array([escape_time(xs[:, 1]) for xs in out["sgd"].xs])
  predicted = np.log(0.5 / config.offset) / np.log(1 + config.eta)
  ridge_end = out["gd_ridge"].xs[-1]
  checks = [
    check(
      "GD on the ridge: escape time and distance of its limit from the saddle",
      [t_ridge, float(np.linalg.norm(ridge_end))],
      "never (inf) and < 1e-8",
      np.isinf(t_ridge) and np.linalg.norm(ridge_end) < 1e-8,
    ),
    check(
      "GD 1e-6 off the ridge: escape time vs log(0.5/1e-6) / log(1 + eta)",
      t_gd,
      f"{predicted:.1f} (within 25%)",
      abs(t_gd - predicted) <= 0.25 * predicted,
    ),
    check_less(
      "SGD from the ridge: median escape time over seeds / GD's",
      float(np.median(t_sgd) / t_gd),
      0.5,
    ),
    check(
      f"SGD: seeds that escape within {config.steps} steps",
      int(np.isfinite(t_sgd).sum()),
      f"all {config.seeds}",
      bool(np.all(np.isfinite(t_sgd))),
    ),
    check_less("heavy ball: escape time / GD's", float(t_mom / t_gd), 0.5),
    check(
      "final f of the escaping runs (GD near, momentum, SGD median)",
      [
        float(out["gd_near"].values[-1]),
        float(out["momentum"].values[-1]),
        float(np.median(out["sgd"].values[:, -1])),
      ],
      "about -0.25 (a minimum) each",
      bool(
        np.all(
          np.abs(
            np.array(
              [
                out["gd_near"].values[-1],
                out["momentum"].values[-1],
                np.median(out["sgd"].values[:, -1]),
              ]
            )
            + 0.25
          )
          < 1e-3
        )
      ),
    ),
  ]
  data = {
    "escape_gd_ridge": t_ridge,
    "escape_gd_near": t_gd,
    "escape_momentum": t_mom,
    "escape_sgd": t_sgd,
    "predicted_gd": predicted,
    "paths": {k: out[k].xs for k in ("gd_ridge", "gd_near", "momentum")},
    "values": {k: out[k].values for k in ("gd_ridge", "gd_near", "momentum")},
    "sgd_paths": out["sgd"].xs[:4],
    "sgd_values": out["sgd"].values,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 2, panel=(5.5, 4.0))
  ax = axes[0]
  U.contour(ax, problems.double_well, (-1.2, 1.2), (-1.4, 1.4), levels=25, log=False)
  ax.plot([0], [0], "kx", ms=10)
  styles = {
    "gd_ridge": ("GD on the ridge", "tab:red"),
    "gd_near": ("GD, 1e-6 off the ridge", "tab:orange"),
    "momentum": ("heavy ball, 1e-6 off", "tab:blue"),
  }
  for k, (lab, col) in styles.items():
    p = np.asarray(d["paths"][k])
    ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=1, color=col, label=lab)
  for i, p in enumerate(np.asarray(d["sgd_paths"])):
    ax.plot(
      p[:, 0],
      p[:, 1],
      lw=0.8,
      color="tab:green",
      alpha=0.7,
      label="SGD (noise), 4 seeds" if i == 0 else None,
    )
  ax.set_title("paths near the saddle (x)")
  ax.legend(fontsize=7, loc="lower left")
  ax = axes[1]
  for k, (lab, col) in styles.items():
    ax.plot(d["values"][k], color=col, label=f"{lab} (escape {d[f'escape_{k}']:g})")
  sgd = np.asarray(d["sgd_values"])
  ax.plot(sgd.T, color="tab:green", lw=0.6, alpha=0.5)
  ax.plot(
    [],
    [],
    color="tab:green",
    label=f"SGD, {len(sgd)} seeds (median escape {np.median(d['escape_sgd']):g})",
  )
  ax.axhline(0.0, color="gray", ls=":", lw=0.8)
  ax.set_xlabel("iteration k")
  ax.set_ylabel("$f(x_k)$ (saddle: 0, minima: -0.25)")
  ax.set_title("the plateau at the saddle value")
  ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
