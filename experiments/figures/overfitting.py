"""Overfitting: training vs validation curves, early stopping, dropout, L2 and augmentation.

Slides 142-160 of 004 and notes 001: a model with many parameters trained on few examples fits
the training set ever better while the validation error stops falling and then rises (the
model starts to learn patterns of the training data only); early stopping keeps the parameters
of the best validation point. Remedies: L2 weight decay, the notes' lambda R(W) with
R(W) = sum W^2 (004 ~3090, gradient 2 lambda W; here `research.optim.add_l2_penalty(alpha)`,
which adds alpha W to the gradient: alpha = 2 lambda), dropout with a ratio in
0.2-0.5 (`research.models.create('mlp', dropout_rate=...)`), and data augmentation (random
one-pixel shifts with `research.data.augment.pad_and_crop`).

Every run: the same 2 x 256 ReLU MLP on a small real training set (200 digits), SGD with
momentum (`research.optim.heavy_ball`), same seed and steps. Splits (`_fit.load_data`): the 200
training digits are drawn from the training split less its validation set, the 287 digits held
out of it (`research.data.holdout`); every curve, the gaps and the early-stopping choice are on
validation; the 360 test digits are evaluated once, at the end, on the early-stopped parameters
(the model early stopping selects) and on the final ones. The gap measured is validation loss
minus training loss at the end of training.
"""

from __future__ import annotations

import functools
import pathlib

import ml_collections
import numpy as np
import optax

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_greater, check_less
from research import optim
from research.data import augment
from research.models import create

NAME = "overfitting"
TITLE = "Overfitting on 200 digits: train vs validation, early stopping, dropout, L2, augmentation"
CAPTION = (
  "A 2 x 256 ReLU MLP trained on 200 real digits. Without regularization the training loss "
  "goes to zero while the validation loss reaches a minimum (the early-stopping point) and "
  "rises again; the parameters kept there also have a lower test loss than the final ones. "
  "L2 weight decay and shift augmentation shrink the final gap between "
  "validation and training loss; dropout lowers the best validation loss (its network, too, "
  "memorizes the 200 examples by the end)."
)
PAPER = common.Paper(
  source='Srivastava et al. 2014, "Dropout", JMLR, Table 2',
  setup="MNIST, 3 hidden layers of 1024 ReLU units, dropout on the inputs and hidden units",
  number=(
    "test error 1.25% with dropout (1.06% adding max-norm), against 1.60% for a standard 2 x 800 "
    "net without dropout"
  ),
)

VARIANTS = ("baseline", "dropout", "l2", "augmentation")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.max_train = 200
  config.depth = 2
  config.width = 256
  config.batch_size = 32
  config.steps = 1500
  config.eval_every = 50
  config.learning_rate = 0.05
  config.momentum = 0.9
  config.dropout_rate = 0.5
  config.weight_decay = 1e-2
  config.shift = 1
  config.seed = 0
  # the dropout check: baseline and dropout also at these seeds (data subset and init)
  config.dropout_seeds = (0, 1, 2)
  return common.sized(size, config, full={"steps": 5000})


@functools.lru_cache
def shift_batch(shift: int):
  """augment(key, image, label) -> the image shifted by up to `shift` pixels (one example)."""

  def apply(key, image, label):
    return augment.pad_and_crop(key, image, shift), label

  return apply


def _runs(config, variants, seed) -> tuple[_fit.Data, dict[str, _fit.FitResult]]:
  """(the `_fit.Data` trained on, variant -> FitResult) of `variants` with `seed` (its own subset
  of `max_train` training examples and its own initialization)."""
  data = _fit.load_data(config.dataset, max_train=config.max_train, seed=seed)
  sgd = optim.heavy_ball(config.learning_rate, config.momentum)
  runs = {}
  for variant in variants:
    model = create(
      "mlp",
      num_classes=10,
      depth=config.depth,
      width=config.width,
      activation="relu",
      dropout_rate=config.dropout_rate if variant == "dropout" else 0.0,
    )
    tx = optax.chain(optim.add_l2_penalty(config.weight_decay), sgd) if variant == "l2" else sgd
    runs[variant] = _fit.fit_config(
      config,
      model,
      tx,
      data.train,
      data.validation,
      test=data.test,
      seed=seed,
      select="loss",  # early stopping at the lowest validation loss
      augment=shift_batch(config.shift) if variant == "augmentation" else None,
    )
  return data, runs


def run(config: ml_collections.ConfigDict) -> FigureResult:
  arrays, runs = _runs(config, VARIANTS, config.seed)
  name, train, test = arrays.name, arrays.train, arrays.test
  base = runs["baseline"]
  best = base.best_index  # argmin of the validation loss, the earliest of ties
  gap = {v: float(r.val_loss[-1] - r.train_loss[-1]) for v, r in runs.items()}
  acc_gap = {v: float(r.train_accuracy[-1] - r.val_accuracy[-1]) for v, r in runs.items()}
  checks = [
    check_less(
      "baseline: final training loss (fits the 200 examples)", float(base.train_loss[-1]), 0.01
    ),
    check_greater(
      "baseline: final validation loss / its minimum (rises after the minimum)",
      float(base.val_loss[-1] / base.val_loss[best]),
      1.1,
    ),
    check(
      "baseline: early-stopping step (argmin validation loss) before the last step",
      int(base.eval_steps[best]),
      f"< {int(base.eval_steps[-1])}",
      best < len(base.eval_steps) - 1,
    ),
    # what early stopping buys, measured once on the test split: the parameters chosen on
    # validation fit unseen data better than the final, overfitted ones
    check_less(
      "baseline: test loss of the early-stopped parameters / of the final parameters",
      base.test["loss"] / base.final_test["loss"],
      1.0,
    ),
  ]
  for v in ("l2", "augmentation"):
    checks.append(
      check_less(
        f"{v}: final gap (val loss - train loss) / baseline's", gap[v] / gap["baseline"], 0.9
      )
    )
  # Dropout's network memorizes the 200 examples too by the last step, so its final gap is
  # within seed noise of the baseline's (ratio 0.93-1.29 over 6 seeds, mean 1.12); what it
  # changes is the best model, its lowest validation loss. That ratio is noisy from one seed
  # (each seed its own 200 training digits and initialization): with 287 validation digits held
  # out of the training split it was 0.97, 0.91, 0.77, 0.83, 1.11, 0.72 over seeds 0-5 (mean
  # 0.88; with the 360 test digits as validation it had been 0.74-0.96), so the check is on the
  # mean over `dropout_seeds` and asks for it below 1: dropout lowers the best validation loss.
  best_loss = {v: float(np.min(r.val_loss)) for v, r in runs.items()}
  ratios = []
  for seed in config.dropout_seeds:
    pair = runs if seed == config.seed else _runs(config, ("baseline", "dropout"), seed)[1]
    ratios.append(float(np.min(pair["dropout"].val_loss) / np.min(pair["baseline"].val_loss)))
  checks.append(
    check_less(
      f"dropout: lowest validation loss / baseline's (mean of seeds {tuple(config.dropout_seeds)})",
      float(np.mean(ratios)),
      1.0,
    )
  )
  data = {
    "dataset": name,
    "train_examples": int(len(train[0])),
    "steps": base.eval_steps.tolist(),
    "early_stopping_step": int(base.eval_steps[best]),
    "early_stopping_val_accuracy": float(base.val_accuracy[best]),
    "test_examples": int(len(test[0])),
    # the test split, evaluated once per run: early-stopped (chosen on validation) and final
    "test": {v: r.test for v, r in runs.items()},
    "final_test": {v: r.final_test for v, r in runs.items()},
    "loss_gap": gap,
    "accuracy_gap": acc_gap,
    "lowest_val_loss": best_loss,
    "dropout_lowest_val_loss_ratio": dict(zip(config.dropout_seeds, ratios, strict=True)),
    "final_val_accuracy": {v: float(r.val_accuracy[-1]) for v, r in runs.items()},
    "curves": {
      v: {
        "train_loss": r.train_loss.tolist(),
        "val_loss": r.val_loss.tolist(),
        "train_accuracy": r.train_accuracy.tolist(),
        "val_accuracy": r.val_accuracy.tolist(),
      }
      for v, r in runs.items()
    },
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  steps = np.asarray(d["steps"])
  fig, axes = common.subplots(1, 3, figsize=(16, 4.4), title=TITLE)
  base = d["curves"]["baseline"]
  ax = axes[0]
  ax.plot(steps, base["train_loss"], label="training loss")
  ax.plot(steps, base["val_loss"], label="validation loss")
  ax.axvline(
    d["early_stopping_step"],
    color="gray",
    ls=":",
    label=(
      f"early stopping on validation (step {d['early_stopping_step']}; test loss "
      f"{d['test']['baseline']['loss']:.3f}, final {d['final_test']['baseline']['loss']:.3f})"
    ),
  )
  ax.set(
    xlabel="SGD step",
    ylabel="loss",
    title=f"No regularization ({d['train_examples']} {d['dataset']} examples)",
    yscale="log",
  )
  ax.legend(fontsize=8)
  ax = axes[1]
  for i, v in enumerate(VARIANTS):
    c = d["curves"][v]
    ax.plot(steps, c["train_loss"], "--", color=f"C{i}")
    ax.plot(steps, c["val_loss"], "-", color=f"C{i}", label=v)
  ax.set(
    xlabel="SGD step",
    ylabel="loss (dashed: training, solid: validation)",
    title="Training vs validation loss",
    yscale="log",
  )
  ax.legend(fontsize=8)
  ax = axes[2]
  x = np.arange(len(VARIANTS))
  ax.bar(x - 0.2, [d["loss_gap"][v] for v in VARIANTS], 0.4, label="val loss - train loss")
  ax.bar(x + 0.2, [d["accuracy_gap"][v] for v in VARIANTS], 0.4, label="train acc - val acc")
  for i, v in enumerate(VARIANTS):
    ax.text(
      i,
      max(d["loss_gap"][v], d["accuracy_gap"][v]) + 0.01,
      f"val acc {d['final_val_accuracy'][v]:.3f}",
      ha="center",
      fontsize=8,
    )
  ax.set_xticks(x, VARIANTS)
  ax.set(ylabel="final generalization gap", title="Each remedy's train/validation gap")
  ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
