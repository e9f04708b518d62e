"""Grid vs random search with the same budget of 9 trials (the slides' picture): RMSProp's
learning rate matters, its epsilon (delta in the slides) hardly does. Both are sampled on a log
scale. A grid of 3 x 3 tries only 3 learning rates; random search tries 9 distinct ones.
Then coarse-to-fine: random search in the whole box, narrowed to the best trials' range, and
random search again inside it.

Each trial: full-batch RMSProp (`research.optim.rmsprop`, epsilon inside the square root as in
the lecture) for T steps on L2-regularized logistic regression (20 dims); the score is the
validation loss. All trials of all seeds run vmapped in one jitted call.

Then the same comparison for real, through the tool users run (`research.sweep`, vectorized:
each stage one program), as the lecture does it: Adam on the full Fashion-MNIST (the `mlp`
recipe of `experiments/configs/fashion_mnist.py`, batch 128, with a constant learning rate and
one hidden layer of 64 ReLU units, `real_widths`: Bergstra & Bengio's networks, their Sect. 3,
have one hidden layer), its learning rate (matters) and its epsilon (hardly matters) both
log-uniform. Coarse search (粗搜索): each trial trains one epoch of the 55,000 training images,
and trials are compared by validation accuracy (the 5,000 images held out of the training
split); a 3 x 3 grid against 9 random trials: with the same budget, random search
tries 9 learning rates instead of 3 and finds a validation accuracy within one validation
example of the grid's best, or better. Fine search (精搜索): 9 random trials inside the range of
the 3 best coarse trials, each trained five epochs (the notes: five to ten); the chosen trial is
the fine stage's best by validation accuracy, and only then is its test accuracy (the 10,000
test images) evaluated, once. One draw of each search is compared: with the recipe's
256-128-100 network instead (2026-12-05) the grid's middle learning rate, 10^-2.5, fell on
Adam's best and the grid's best coarse trial beat random search's by 0.0014 (7 of the 5,000
validation images; 0.8500 vs 0.8486), while the fine stage still gained 0.024. Random search's
advantage is one of expectation, which the toy above measures over 50 seeds.
"""

from __future__ import annotations

import math
import os
import tempfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.configs import fashion_mnist
from experiments.figures import _fit, common, problems
from experiments.figures import _optim_utils as U
from experiments.figures.common import FigureResult, check, check_less
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
  "trials improves further. Right: Adam on Fashion-MNIST (an MLP; learning rate and epsilon) "
  "by "
  "research.sweep, as the lecture prescribes: a coarse grid and a coarse random search of one "
  "epoch each, ranked by validation accuracy; a fine random search of five epochs inside the "
  "range of the 3 best coarse random trials; the chosen trial (the fine stage's best "
  "validation accuracy) is the only one whose test accuracy is evaluated, once, after the "
  "choice. Every y value on the right is a validation accuracy; the test number is in the "
  "legend."
)
PAPER = common.Paper(
  source=(
    'Bergstra & Bengio 2012, "Random Search for Hyper-Parameter Optimization", Fig. 1; the '
    "lecture, notes 004 ~3374-3510"
  ),
  setup="grids against random trials of the same count when few hyperparameters matter",
  number=(
    "with 9 trials a 3 x 3 grid tries 3 values of the important hyperparameter and random search "
    "9, so random search finds as good or better settings; the notes: coarse search one epoch, "
    "fine search five to ten epochs, chosen on validation accuracy"
  ),
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
  # the real search: research.sweep (vectorized), Adam's lr and eps, coarse to fine
  c.dataset = "fashion_mnist_idx"
  c.real_coarse_epochs = 1.0  # the lecture: coarse trials train one epoch
  c.real_fine_epochs = 5.0  # ... fine trials five to ten
  c.real_widths = (64,)  # the MLP's hidden layers
  c.real_lr = (1e-5, 1.0)
  c.real_eps = (1e-10, 1e-6)
  return common.sized(
    size,
    c,
    test={
      "seeds": 20,
      "curve_points": 12,
      "curve_eps": 3,
      "steps": 60,
      "dataset": "digits",
      "real_widths": (64,),
    },
    full={"seeds": 200, "real_widths": (256, 128, 100), "real_fine_epochs": 10.0},
  )


def real_searches(c, dataset: str) -> dict:
  """{'grid': records, 'random': records}: `research.sweep`'s trial records (trials.jsonl
  lines with their configs) of Adam on `dataset` (an MLP). 'grid': c.trials grid trials of
  c.real_coarse_epochs epochs (one stage); 'random': c.trials random trials of as many epochs
  (stage 1, coarse), then c.trials inside the range of the c.keep best (stage 2, fine, of
  c.real_fine_epochs epochs). Each sweep ranks by validation accuracy and evaluates the test
  split of its chosen trial only, once."""
  config = fashion_mnist.get_config("mlp")
  config.dataset.name = dataset
  config.dataset.validation = None  # the dataset's validation set (Fashion-MNIST: 5,000 images)
  config.optimizer.schedule.name = "constant"  # the swept learning rate is the rate
  config.optimizer.eps = 1e-8  # adam's own hyperparameter, swept below
  config.model.widths = tuple(c.real_widths)
  splits = sweep_lib.sweep_splits(config)
  coarse = sweep_lib.epoch_steps(c.real_coarse_epochs, splits.train.size, config.batch_size)
  fine = sweep_lib.epoch_steps(c.real_fine_epochs, splits.train.size, config.batch_size)
  config.num_train_steps = coarse  # the grid's one stage; the random sweep sets its stages
  # Validation at the end of each trial only (the lecture: the accuracy after its epochs; a run
  # always evaluates its last step). A multiple of 100 past the fine stage keeps 100 steps per
  # dispatch: dispatches end at each period's multiples (the gcd of 100 and the periods), and
  # the fine stage's 2,149 steps (prime) as a period would make them one step long.
  periods = 100 * math.ceil(fine / 100)
  config.eval_every_steps = config.checkpoint_every_steps = config.log_every_steps = periods
  config.tensorboard = config.progress_bar = False
  dims = [
    space.parse(f"optimizer.learning_rate=loguniform({c.real_lr[0]},{c.real_lr[1]})", config),
    space.parse(f"optimizer.eps=loguniform({c.real_eps[0]},{c.real_eps[1]})", config),
  ]
  out = {}
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
        refine=c.keep if method == "random" else 0,
        coarse_epochs=c.real_coarse_epochs,
        fine_epochs=c.real_fine_epochs,
        log=lambda _: None,
      )
      out[method] = sweep.run()
  out["dims"] = dims
  return out


def _real_numbers(searches: dict, keep: int) -> dict:
  """Best validation accuracies (coarse grid, coarse random, fine), distinct learning rates,
  the spread over eps (at the grid's best lr) vs over lr (coarse grid), the fine stage's
  range, and the chosen trial's validation and test accuracies (each sweep's test numbers
  counted: its chosen trial only)."""

  def table(records):
    return np.asarray(
      [
        [
          r["overrides"]["optimizer.learning_rate"],
          r["overrides"]["optimizer.eps"],
          r["best_validation_accuracy"],
        ]
        for r in records
      ],
      np.float64,
    )

  coarse = [r for r in searches["random"] if r["stage"] == 1]
  fine = [r for r in searches["random"] if r["stage"] == 2]
  grid, rand, fine_table = table(searches["grid"]), table(coarse), table(fine)
  by_lr = {}
  for lr, _, acc in grid:
    by_lr.setdefault(lr, []).append(acc)
  best_lr = max(by_lr, key=lambda lr: np.mean(by_lr[lr]))
  # at the best learning rate, as the toy's check: at lr = 1 Adam diverges in one epoch and
  # its accuracies (near chance) vary with anything, epsilon included
  eps_spread = float(np.ptp(by_lr[best_lr]))
  lr_spread = float(np.ptp([np.mean(v) for v in by_lr.values()]))
  narrowed = space.refined(
    searches["dims"], [r["overrides"] for r in sweep_lib.ranked(coarse, "accuracy", "max")[:keep]]
  )[0].values
  (chosen,) = [r for r in searches["random"] if r["chosen"]]
  counts = chosen["num_examples"]
  return {
    "grid": grid,
    "random": rand,
    "fine": fine_table,
    "grid_best": float(grid[:, 2].max()),
    "random_best": float(rand[:, 2].max()),
    "fine_best": float(fine_table[:, 2].max()),
    "grid_lrs": len(by_lr),
    "random_lrs": len(np.unique(rand[:, 0])),
    "eps_spread": eps_spread,
    "eps_spread_lr": float(best_lr),
    "lr_spread": lr_spread,
    "fine_lr_range": [float(v) for v in narrowed],
    "fine_inside": float(
      np.mean((fine_table[:, 0] >= narrowed[0]) & (fine_table[:, 0] <= narrowed[1]))
    ),
    "coarse_steps": int(coarse[0]["steps"]),
    "fine_steps": int(fine[0]["steps"]),
    "chosen_trial": int(chosen["trial"]),
    "chosen_stage": int(chosen["stage"]),
    "chosen_lr": float(chosen["overrides"]["optimizer.learning_rate"]),
    "chosen_validation": float(chosen["best_validation_accuracy"]),
    "chosen_test": float(chosen["test_accuracy"]),
    "tested_trials": [sum("test_accuracy" in r for r in searches[m]) for m in ("grid", "random")],
    "validation_examples": int(counts["validation"]),
    "test_examples": int(counts["test"]),
    "train_examples": int(counts["train"]),
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
  dataset = _fit.resolve_dataset(c.dataset)[0]  # the dataset that runs (digits without the files)
  real = _real_numbers(real_searches(c, dataset), c.keep)
  one_example = 1.0 / real["validation_examples"]
  coarse_text = f"coarse ({c.real_coarse_epochs:g} epoch)"
  checks += [
    check(
      f"research.sweep on {dataset}, {coarse_text}: distinct learning rates, grid vs random",
      [real["grid_lrs"], real["random_lrs"]],
      f"3 vs {c.trials}",
      real["grid_lrs"] == 3 and real["random_lrs"] == c.trials,
    ),
    check(
      f"research.sweep on {dataset}, {coarse_text}: random search's best validation accuracy minus "
      "the grid's best (same 9 trials)",
      real["random_best"] - real["grid_best"],
      f">= -{one_example:.4f} (one validation example)",
      real["random_best"] >= real["grid_best"] - one_example - 1e-9,
    ),
    check_less(
      f"research.sweep on {dataset}, {coarse_text}: epsilon hardly matters: spread of the "
      "validation accuracy over epsilon at the grid's best learning rate / spread over the "
      "learning rates (mean over epsilon)",
      real["eps_spread"] / max(real["lr_spread"], 1e-12),
      0.1,
    ),
    check(
      f"research.sweep on {dataset}, fine ({c.real_fine_epochs:g} epochs): share of fine "
      f"trials inside the range of the {c.keep} best coarse trials by validation",
      real["fine_inside"],
      "1",
      real["fine_inside"] == 1.0,
    ),
    check(
      f"research.sweep on {dataset}: the fine stage's best validation accuracy minus the coarse "
      "stage's (random)",
      real["fine_best"] - real["random_best"],
      ">= 0",
      real["fine_best"] >= real["random_best"],
    ),
    check(
      f"research.sweep on {dataset}: trials whose test accuracy was evaluated (grid, random "
      "coarse to fine): the chosen one of each, once, after selection",
      real["tested_trials"],
      "[1, 1]",
      real["tested_trials"] == [1, 1],
    ),
    check_less(
      f"research.sweep on {dataset}: the chosen trial's |test accuracy - validation accuracy| "
      f"({real['test_examples']} test, {real['validation_examples']} validation images)",
      abs(real["chosen_test"] - real["chosen_validation"]),
      0.05,
    ),
  ]
  data = {
    "dataset": dataset,
    "real": real,
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
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


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
  real = d["real"]
  ax = axes[3]
  coarse_label = f"{real['coarse_steps']} steps"
  for key, marker, label in (
    ("grid", "s", f"coarse grid (3 x 3), {coarse_label}: best {real['grid_best']:.3f}"),
    ("random", "o", f"coarse random (9), {coarse_label}: best {real['random_best']:.3f}"),
    ("fine", "^", f"fine random (9), {real['fine_steps']} steps: best {real['fine_best']:.3f}"),
  ):
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
  ax.axvspan(*real["fine_lr_range"], color="C2", alpha=0.1, lw=0)
  ax.scatter(
    [real["chosen_lr"]],
    [real["chosen_validation"]],
    marker="*",
    s=200,
    c="C3",
    zorder=3,
    label=f"chosen by validation; its test accuracy {real['chosen_test']:.3f} (once)",
  )
  ax.set_xscale("log")
  ax.set_xlabel("Adam learning rate")
  ax.set_ylabel(f"validation accuracy ({real['validation_examples']} held-out images)")
  lowest = min(np.asarray(real[k])[:, 2].min() for k in ("grid", "random", "fine"))
  ax.set_ylim(lowest - 0.03, 1.0)
  ax.set_title(f"{d['dataset']}, research.sweep: coarse to fine\n(shaded: fine range)", fontsize=9)
  ax.legend(fontsize=6, loc="center left")
  return [common.save_figure(fig, out_dir, NAME)]
