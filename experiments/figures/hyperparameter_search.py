"""Grid vs random search with the same budget of 9 trials (the slides' picture): RMSProp's
learning rate matters, its epsilon (delta in the slides) hardly does. Both are sampled on a log
scale. A grid of 3 x 3 tries only 3 learning rates; random search tries 9 distinct ones.
Then coarse-to-fine: random search in the whole box, narrowed to the best trials' range, and
random search again inside it.

Each trial: full-batch RMSProp (`research.optim.rmsprop`, epsilon inside the square root as in
the lecture) for T steps on L2-regularized logistic regression (20 dims); the score is the
validation loss. All trials of all seeds run vmapped in one jitted call.

Then the same comparison for real, through the tool users run (`research.sweep`, vectorized:
each search one program): Adam on scikit-learn's digits (`experiments/configs/mlp_digits.py`),
its learning rate (matters) and its epsilon (hardly matters) both log-uniform, a 3 x 3 grid
against 9 random trials. With the same budget, random search tries 9 learning rates instead of
3 and finds an accuracy within one validation example of the grid's best, or better.
"""

from __future__ import annotations

import os
import tempfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.configs import mlp_digits
from experiments.figures import _optim_utils as U
from experiments.figures import common, problems
from experiments.figures.common import FigureResult, check, check_less
from research import data as data_lib
from research import optim
from research.sweep import run as sweep_lib
from research.sweep import space

NAME = "hyperparameter_search"
TITLE = "Grid vs random search (9 trials), learning rate on a log scale, coarse to fine"
CAPTION = (
  "Validation loss of RMSProp after T steps as a function of the learning rate (important) "
  "and epsilon (unimportant), both on log scales. Grid search (3 x 3) tries 3 learning "
  "rates, random search 9; over many seeds random search finds a lower validation loss on "
  "average. Coarse-to-fine: a second random search inside the range of the 3 best coarse "
  "trials improves further. Right: the same grid and random search of Adam on digits "
  "(learning rate and epsilon) run by research.sweep."
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.num_points = 500
  c.dim = 20
  c.l2 = 1e-3
  c.steps = 100
  c.log10_lr = (-6.0, 1.0)  # a wide first range, as a coarse search starts
  c.log10_eps = (-8.0, -4.0)
  c.trials = 9
  c.seeds = 50
  c.keep = 3  # coarse-to-fine: narrow to the range of the best `keep`
  c.curve_points = 40  # background map: learning rates x epsilons
  c.curve_eps = 6
  c.seed = 0
  # the real search: research.sweep on digits (vectorized), Adam's lr and eps
  c.digits_steps = 300
  c.digits_width = 256
  c.digits_lr = (1e-5, 1.0)
  c.digits_eps = (1e-10, 1e-6)
  return common.sized(
    size,
    c,
    test={
      "seeds": 20,
      "curve_points": 12,
      "curve_eps": 3,
      "steps": 60,
      "digits_steps": 100,
      "digits_width": 64,
    },
    full={"seeds": 200, "digits_steps": 600},
  )


def digits_searches(c) -> dict:
  """{'grid': records, 'random': records, 'eval_examples': n}: `research.sweep`'s trial records
  (trials.jsonl lines with their configs) of c.trials grid and c.trials random trials of Adam
  on digits, and the size of the split they are evaluated on."""
  config = mlp_digits.get_config()
  config.optimizer.eps = 1e-8  # adam's own hyperparameter, swept below
  config.model.width = c.digits_width
  config.num_train_steps = c.digits_steps
  config.eval_every_steps = config.checkpoint_every_steps = config.log_every_steps = c.digits_steps
  config.tensorboard = config.progress_bar = False
  dims = [
    space.parse(f"optimizer.learning_rate=loguniform({c.digits_lr[0]},{c.digits_lr[1]})", config),
    space.parse(f"optimizer.eps=loguniform({c.digits_eps[0]},{c.digits_eps[1]})", config),
  ]
  info = data_lib.get_info(config.dataset.name, config.dataset.data_dir)
  out = {"eval_examples": info.num_examples[config.dataset.eval_split]}
  with tempfile.TemporaryDirectory(prefix="hyperparameter_search_") as workdir:
    for method in ("grid", "random"):
      sweep = sweep_lib.Sweep(
        config,
        os.path.join(workdir, method),
        dims,
        method=method,
        trials=c.trials,
        seed=c.seed,
        mode="vectorized",
        log=lambda _: None,
      )
      out[method] = sweep.run()
  return out


def _digits_numbers(searches: dict) -> dict:
  """Best accuracies, distinct learning rates, and the spread over eps vs over lr (grid)."""

  def table(records):
    return np.asarray(
      [
        [
          r["overrides"]["optimizer.learning_rate"],
          r["overrides"]["optimizer.eps"],
          r["best"]["accuracy"],
        ]
        for r in records
      ],
      np.float64,
    )

  grid, rand = table(searches["grid"]), table(searches["random"])
  by_lr = {}
  for lr, _, acc in grid:
    by_lr.setdefault(lr, []).append(acc)
  eps_spread = max(np.ptp(v) for v in by_lr.values())
  lr_spread = float(np.ptp([np.mean(v) for v in by_lr.values()]))
  return {
    "grid": grid,
    "random": rand,
    "grid_best": float(grid[:, 2].max()),
    "random_best": float(rand[:, 2].max()),
    "grid_lrs": len(by_lr),
    "random_lrs": len(np.unique(rand[:, 0])),
    "eps_spread": float(eps_spread),
    "lr_spread": lr_spread,
    "eval_examples": int(searches["eval_examples"]),
  }


def _score_fn(c):
  """(log10 lr, log10 eps) -> validation loss after c.steps of full-batch RMSProp."""
  (xt, yt), (xv, yv) = problems.logistic_train_val(c.num_points, c.dim, c.seed)
  train = lambda w: problems.logistic_loss(w, xt, yt, c.l2)

  def score(log_lr, log_eps):
    tx = optim.rmsprop(10.0**log_lr, 0.9, 10.0**log_eps)
    w = U.optimize(tx, train, jnp.zeros(c.dim), c.steps).xs[-1]
    return problems.logistic_loss(w, xv, yv, 0.0)

  return jax.vmap(score)


def _grid(c) -> np.ndarray:
  """3 x 3 grid at the cell centres of the log box: (9, 2) of (log10 lr, log10 eps)."""
  side = int(round(np.sqrt(c.trials)))
  cells = (np.arange(side) + 0.5) / side
  lr = c.log10_lr[0] + cells * (c.log10_lr[1] - c.log10_lr[0])
  eps = c.log10_eps[0] + cells * (c.log10_eps[1] - c.log10_eps[0])
  return np.stack(np.meshgrid(lr, eps), -1).reshape(-1, 2)


def _uniform(rng, n, box_lr, box_eps) -> np.ndarray:
  return np.stack([rng.uniform(*box_lr, n), rng.uniform(*box_eps, n)], -1)


def run(config) -> FigureResult:
  c = config
  rng = np.random.default_rng(c.seed)
  grid = _grid(c)
  coarse = np.stack([_uniform(rng, c.trials, c.log10_lr, c.log10_eps) for _ in range(c.seeds)])
  lr_curve = np.linspace(*c.log10_lr, c.curve_points)
  eps_curve = np.linspace(*c.log10_eps, c.curve_eps)
  background = np.stack(np.meshgrid(lr_curve, eps_curve), -1).reshape(-1, 2)
  with jax.enable_x64(True):
    score = jax.jit(_score_fn(c))
    flat = lambda pts: np.asarray(
      score(jnp.asarray(pts[..., 0].ravel()), jnp.asarray(pts[..., 1].ravel()))
    ).reshape(pts.shape[:-1])
    grid_scores = flat(grid)
    coarse_scores = flat(coarse)  # (seeds, trials)
    # coarse to fine: the log range spanned by the best `keep` coarse trials of each seed
    best = np.argsort(coarse_scores, axis=1)[:, : c.keep]
    chosen = np.take_along_axis(coarse, best[..., None], axis=1)  # (seeds, keep, 2)
    fine = np.stack(
      [
        _uniform(rng, c.trials, (p[:, 0].min(), p[:, 0].max()), (p[:, 1].min(), p[:, 1].max()))
        for p in chosen
      ]
    )
    fine_scores = flat(fine)
    map_scores = flat(background).reshape(c.curve_eps, c.curve_points)
  grid_best = float(grid_scores.min())
  random_best = coarse_scores.min(axis=1)  # (seeds,)
  fine_best = np.minimum(fine_scores.min(axis=1), random_best)
  distinct_random = np.array([len(np.unique(np.round(t[:, 0], 12))) for t in coarse])
  distinct_grid = len(np.unique(np.round(grid[:, 0], 12)))
  lr_spread = float(np.ptp(map_scores.mean(axis=0)))  # over learning rates
  best_lr = int(np.argmin(map_scores.mean(axis=0)))
  eps_spread = float(np.ptp(map_scores[:, best_lr]))  # over epsilons at the best lr
  wins = float(np.mean(random_best < grid_best))
  checks = [
    check(
      "distinct learning rates tried: grid vs random (each seed)",
      [distinct_grid, int(distinct_random.min())],
      f"3 vs {c.trials}",
      distinct_grid == 3 and bool(np.all(distinct_random == c.trials)),
    ),
    check_less(
      f"mean over {c.seeds} seeds of random search's best validation loss minus grid search's best",
      float(random_best.mean() - grid_best),
      0.0,
    ),
    check("share of seeds where random search beats the grid", wins, "> 0.5", wins > 0.5),
    check_less(
      "epsilon is unimportant: spread of the loss over epsilon (at the best lr) / "
      "spread over learning rates",
      eps_spread / lr_spread,
      0.05,
    ),
    check_less(
      "coarse-to-fine: mean best after the fine stage minus mean best after the coarse stage",
      float(fine_best.mean() - random_best.mean()),
      0.0,
    ),
  ]
  real = _digits_numbers(digits_searches(c))
  one_example = 1.0 / real["eval_examples"]
  checks += [
    check(
      "research.sweep on digits: distinct learning rates, grid vs random",
      [real["grid_lrs"], real["random_lrs"]],
      f"3 vs {c.trials}",
      real["grid_lrs"] == 3 and real["random_lrs"] == c.trials,
    ),
    check(
      "research.sweep on digits: random search's best accuracy minus the grid's best "
      "(same 9 trials)",
      real["random_best"] - real["grid_best"],
      f">= -{one_example:.4f} (one validation example)",
      real["random_best"] >= real["grid_best"] - one_example - 1e-9,
    ),
    check_less(
      "research.sweep on digits: epsilon hardly matters: largest accuracy spread "
      "over epsilon at one learning rate / spread over the learning rates",
      real["eps_spread"] / max(real["lr_spread"], 1e-12),
      0.1,
    ),
  ]
  data = {
    "digits": real,
    "grid": grid,
    "grid_scores": grid_scores,
    "grid_best": grid_best,
    "random_example": coarse[0],
    "random_example_scores": coarse_scores[0],
    "fine_example": fine[0],
    "random_best_mean": float(random_best.mean()),
    "fine_best_mean": float(fine_best.mean()),
    "random_wins_share": wins,
    "lr_axis": lr_curve,
    "eps_axis": eps_curve,
    "score_map": map_scores,
    "distinct_random_lrs": int(distinct_random.min()),
    "seeds": c.seeds,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data)


def plot(result: FigureResult, out_dir) -> list:
  d = result.data
  fig, axes = common.subplots(1, 4, panel=(4.6, 4.0))
  lr_axis, eps_axis = np.asarray(d["lr_axis"]), np.asarray(d["eps_axis"])
  score_map = np.asarray(d["score_map"])
  vmax = np.quantile(score_map, 0.75)
  for ax, pts, title in (
    (axes[0], np.asarray(d["grid"]), "grid search: 3 learning rates"),
    (axes[1], np.asarray(d["random_example"]), "random search: 9 learning rates"),
  ):
    mesh = ax.pcolormesh(
      lr_axis, eps_axis, score_map, shading="nearest", cmap="viridis_r", vmax=vmax
    )
    ax.plot(pts[:, 0], pts[:, 1], "wo", ms=7, mec="k")
    for v in pts[:, 0]:
      ax.axvline(v, color="w", lw=0.5, ls=":")
    ax.set_xlabel("$\\log_{10}$ learning rate (important)")
    ax.set_ylabel("$\\log_{10} \\epsilon$ (unimportant)")
    ax.set_title(title)
  fig.colorbar(mesh, ax=axes[1], label="validation loss")
  fine = np.asarray(d["fine_example"])
  axes[1].plot(fine[:, 0], fine[:, 1], "r+", ms=7, label="fine stage (coarse to fine)")
  axes[1].legend(fontsize=7, loc="lower left")
  ax = axes[2]
  ax.plot(lr_axis, score_map.mean(axis=0), "k-", label="mean over $\\epsilon$")
  grid = np.asarray(d["grid"])
  ax.plot(grid[:, 0], d["grid_scores"], "s", ms=8, mfc="none", label="grid trials")
  ax.plot(
    np.asarray(d["random_example"])[:, 0],
    d["random_example_scores"],
    "o",
    label="random trials (one seed)",
  )
  ax.set_ylim(None, vmax)
  ax.set_xlabel("$\\log_{10}$ learning rate")
  ax.set_ylabel("validation loss")
  ax.set_title(
    f"best: grid {d['grid_best']:.4f}, random (mean of {d['seeds']}) {d['random_best_mean']:.4f}",
    fontsize=9,
  )
  ax.legend(fontsize=7)
  real = d["digits"]
  ax = axes[3]
  for key, marker, label in (("grid", "s", "grid (3 x 3)"), ("random", "o", "random (9)")):
    pts = np.asarray(real[key])
    ax.scatter(
      pts[:, 0],
      pts[:, 2],
      marker=marker,
      s=36,
      facecolors="none" if key == "grid" else None,
      edgecolors="C0" if key == "grid" else None,
      label=label,
    )
  ax.set_xscale("log")
  ax.set_xlabel("Adam learning rate")
  ax.set_ylabel("best validation accuracy")
  ax.set_title(
    f"digits via research.sweep: grid {real['grid_best']:.3f}, random {real['random_best']:.3f}",
    fontsize=9,
  )
  ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
