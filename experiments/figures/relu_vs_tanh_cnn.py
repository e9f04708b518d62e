"""Krizhevsky et al. 2012, Fig. 1: a 4-layer CNN reaches a training error faster with ReLU.

The paper trained a four-layer convolutional network on CIFAR-10 on raw pixel intensities
minus the training mean (AlexNet's only preprocessing, the lecture's first trick) and reported
that ReLUs reach 25% training error six times sooner than tanh units, each with the learning
rate that made it fastest. Its explanation: tanh saturates, ReLU does not.

Here, the same protocol at small scale: a 4-layer CNN (`problems.SmallCNN`: three 3x3
convolutions, 16/16/32 filters, max pooling after the second, global average pooling, one dense
layer; default LeCun-normal initialization) trained with SGD + heavy-ball momentum 0.9 on the
digits (or Fashion-MNIST), once per activation and per learning rate of a grid; for each
activation the fastest learning rate counts. Measured: the number of steps until the error on
the training set first falls to `threshold`, evaluated every `eval_every` steps. The claim is
about the speed of optimization, so both the choice of learning rate and the check are on the
training error (the paper's protocol); the training set is the training split less its
validation set (`_fit.load_data`), and the test split is not used.

Two input scalings (the default runs only the first, on a grid of the two rates that were
fastest there, 3e-4 for ReLU and 1e-3 for tanh, for 300 steps; `--full` runs both):
- "paper": 8-bit intensities (x * 255) minus the training mean, as AlexNet feeds them. The
  first layer's pre-activations have a standard deviation of tens, so tanh saturates.
- "standardized": (x - mean) / std. Included to show where the effect comes from: with
  unit-scale inputs this small tanh network stays in its near-linear range and is not slower.
The check is on the paper's setting; the other is reported in `data` and drawn. A run that never
reaches the threshold counts as `steps` (so the ratio is then a lower bound, marked as such).
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check
from experiments.figures.problems import SmallCNN
from research import optim

NAME = "relu_vs_tanh_cnn"
TITLE = "ReLU vs tanh (Krizhevsky et al. Fig. 1): steps of a 4-layer CNN to a fixed training error"
CAPTION = (
  "Training error of the same 4-layer CNN with ReLU and with tanh units (SGD, momentum 0.9, the "
  "fastest learning rate of a grid for each). On raw intensities minus the mean (AlexNet's input)"
  " tanh saturates and needs several times more steps to reach the threshold than ReLU; with "
  "standardized inputs (dashed, --full only) the gap closes: the advantage is that ReLU does "
  "not saturate."
)
PAPER = common.Paper(
  source='Krizhevsky et al. 2012, "ImageNet Classification with Deep CNNs", Fig. 1',
  setup="CIFAR-10, a four-layer convolutional network",
  number="with ReLUs the net reaches 25% training error six times faster than with tanh",
)

ACTIVATIONS = ("relu", "tanh")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.width = 16
  config.batch_size = 64
  config.steps = 300
  config.eval_every = 20
  # examples of the training set (and of the validation set) evaluated every `eval_every` steps
  config.eval_size = 256
  config.max_train = None
  config.threshold = 0.25
  # per scaling: the learning-rate grid searched for each activation. Default: the paper
  # scaling only, with the two rates that were fastest on the wider grid (1e-4, 3e-4, 1e-3:
  # ReLU 3e-4, tanh 1e-3); the 'standardized' side runs are only drawn, so they are --full only
  # (or add "standardized": (0.1,)).
  config.lr_grid = ml_collections.ConfigDict({"paper": (3e-4, 1e-3)})
  config.seed = 0
  return common.sized(
    size,
    config,
    test={
      "steps": 40,
      "eval_every": 20,
      "eval_size": 128,
      "width": 4,
      "lr_grid": {"paper": (3e-4,), "standardized": (0.1,)},
    },
    full={
      "dataset": "cifar10",
      "width": 64,
      "batch_size": 128,
      "steps": 20_000,
      "eval_every": 100,
      "eval_size": 10_000,
      "lr_grid": {"paper": (1e-5, 3e-5, 1e-4, 3e-4), "standardized": (0.01, 0.03, 0.1)},
    },
  )


def scale_inputs(x: np.ndarray, mean: np.ndarray, std: np.ndarray, scaling: str) -> np.ndarray:
  """'paper': 255 (x - mean), 8-bit intensities minus the mean; 'standardized': (x - mean) / std."""
  if scaling == "paper":
    return (255.0 * (x - mean)).astype(np.float32)
  if scaling == "standardized":
    return ((x - mean) / std).astype(np.float32)
  raise ValueError(f"unknown scaling {scaling!r}; use 'paper' or 'standardized'")


def steps_to(steps: np.ndarray, error: np.ndarray, threshold: float) -> int | None:
  """The first evaluated step with error <= threshold, or None when it never gets there."""
  hit = np.flatnonzero(error <= threshold)
  return int(steps[hit[0]]) if hit.size else None


def run(config: ml_collections.ConfigDict) -> FigureResult:
  name, (x_train, y_train), (x_val, y_val), _ = _fit.load_data(
    config.dataset, max_train=config.max_train, seed=config.seed
  )
  num_classes = int(y_train.max()) + 1
  mean = x_train.mean(axis=(0, 1, 2))
  std = x_train.std(axis=(0, 1, 2))
  data = {"dataset": name, "threshold": config.threshold, "scalings": {}}
  for scaling, grid in config.lr_grid.items():
    train = (scale_inputs(x_train, mean, std, scaling), y_train)
    # the validation curve (held out of the training split) is not checked: its first
    # eval_size examples suffice
    val = (scale_inputs(x_val[: config.eval_size], mean, std, scaling), y_val[: config.eval_size])
    entry = {}
    for act in ACTIVATIONS:
      model = SmallCNN(num_classes, act, config.width)
      runs = []
      for lr in grid:
        out = _fit.fit_config(
          config,
          model,
          optim.heavy_ball(lr, 0.9),
          train,
          val,
          eval_size=config.eval_size,
        )
        error = 1.0 - out.train_accuracy
        hit = steps_to(out.eval_steps, error, config.threshold)
        runs.append({"learning_rate": lr, "steps_to_threshold": hit, "train_error": error.tolist()})
      # fastest: fewest steps to the threshold, ties (or no hit) broken by the final error
      best = min(
        runs, key=lambda r: (r["steps_to_threshold"] or config.steps + 1, r["train_error"][-1])
      )
      entry[act] = {"best": best, "grid": runs}
    entry["eval_steps"] = out.eval_steps.tolist()
    data["scalings"][scaling] = entry

  def ratio(scaling):
    relu = data["scalings"][scaling]["relu"]["best"]["steps_to_threshold"]
    tanh = data["scalings"][scaling]["tanh"]["best"]["steps_to_threshold"]
    if relu is None:
      return float("nan"), "relu never reached the threshold"
    if tanh is None:
      return config.steps / relu, f">= (tanh never reached it in {config.steps} steps)"
    return tanh / relu, "tanh steps / relu steps"

  paper, how = ratio("paper")
  data["ratio"] = {s: ratio(s)[0] for s in config.lr_grid}
  data["ratio_note"] = {s: ratio(s)[1] for s in config.lr_grid}
  checks = [
    check(
      f"paper input scaling: steps to {config.threshold:.0%} training error, tanh / ReLU ({how})",
      paper,
      ">= 2 (paper: about 6)",
      bool(np.isfinite(paper) and paper >= 2),
    ),
  ]
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  data = result.data
  fig, ax = common.subplots(figsize=(7.5, 4.5))
  colors = {"relu": "tab:blue", "tanh": "tab:red"}
  styles = {"paper": "-", "standardized": "--"}
  for scaling, entry in data["scalings"].items():
    steps = entry["eval_steps"]
    for act in ACTIVATIONS:
      best = entry[act]["best"]
      hit = best["steps_to_threshold"]
      reached = f"{hit} steps" if hit else f"not reached in {steps[-1]} steps"
      label = f"{act}, {scaling} inputs (lr {best['learning_rate']:g}, {reached})"
      ax.plot(steps, best["train_error"], styles[scaling], color=colors[act], label=label)
  ax.axhline(data["threshold"], color="k", lw=0.8, ls=":")
  ax.text(0, data["threshold"], f" {data['threshold']:.0%}", va="bottom", fontsize=8)
  ax.set_xlabel("training step")
  ax.set_ylabel("training error")
  ax.set_ylim(0, 1)
  r = data["ratio"]["paper"]
  bound = ">=" if data["ratio_note"]["paper"].startswith(">=") else "="
  ax.set_title(
    f"4-layer CNN on {data['dataset']}: tanh/ReLU steps to "
    f"{data['threshold']:.0%} {bound} {r:.1f}x (paper inputs)",
    fontsize=10,
  )
  ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
