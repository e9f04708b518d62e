"""Linear classifier rows as image templates vs a 2-layer MLP's first-layer templates.

Slides 10-17 of 004: the linear classifier f = W x + b scores class c by the inner product of
the image with W's row c, so each row reshaped to the image is a "template" of its class, one
per class. In the 2-layer network f = W2 max(0, W1 x + b1) + b2 the rows of W1 are templates too,
as many as we choose, and W2 mixes their match scores; the network can learn several templates
per class and scores better.

Both models come from `research.models.create` ("linear"; "mlp" with depth 1) and are trained
with `research.optim.adam` on real images (Fashion-MNIST when installed, else digits). The MLP
starts from small N(0, 0.01^2) weights (two layers train fine from there), so its learned
templates are not hidden under the noise of a larger random initialization.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater
from research import optim
from research.models import create

NAME = "templates"
TITLE = "Linear classifier templates (one per class) vs a 2-layer MLP's first-layer templates"
CAPTION = (
  "Top: the linear classifier's weight row of each class, reshaped to the image (red "
  "positive, blue negative); each looks like its class's mean image. Bottom: the first-layer "
  "rows W1 of a 2-layer MLP with a chosen number of hidden units: more, partial templates whose "
  "matches the second layer combines, and a higher validation accuracy."
)
PAPER = common.Paper(
  source="the lecture, notes 004 ~183-242",
  setup="a linear classifier and a 2-layer MLP on images",
  number=(
    "the rows of a linear classifier W are one template per class; the first layer W1 of an MLP "
    "holds as many templates as it has hidden units, and W2 combines their matches"
  ),
)

FASHION_NAMES = (
  "T-shirt",
  "trouser",
  "pullover",
  "dress",
  "coat",
  "sandal",
  "shirt",
  "sneaker",
  "bag",
  "boot",
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.max_train = 20000
  config.max_val = 5000
  config.hidden = 30
  config.batch_size = 128
  config.steps = 1500
  config.learning_rate = 3e-3
  config.seed = 0
  return common.sized(
    size,
    config,
    test={"max_train": 10000, "max_val": 2000},
    full={"max_train": None, "max_val": None, "steps": 6000},
  )


def template_class_correlation(templates: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Pearson correlations of templates (C, D) with each class's mean image minus the overall mean.

  Returns (C, C): entry [c, k] correlates template c with class k's centered mean image.
  """
  flat = x.reshape(len(x), -1)
  centered = np.stack([flat[y == c].mean(0) for c in range(len(templates))]) - flat.mean(0)
  t = templates - templates.mean(1, keepdims=True)
  m = centered - centered.mean(1, keepdims=True)
  return (t @ m.T) / np.outer(np.linalg.norm(t, axis=1), np.linalg.norm(m, axis=1) + 1e-12)


def run(config: ml_collections.ConfigDict) -> FigureResult:
  # curves on the validation set held out of the training split; nothing is chosen, no test
  name, train, val, _ = _fit.load_data(
    config.dataset, max_train=config.max_train, max_val=config.max_val, seed=config.seed
  )
  image_shape = train[0].shape[1:3]
  common = dict(
    batch_size=config.batch_size,
    steps=config.steps,
    seed=config.seed,
    eval_every=config.steps // 10,
  )
  linear = _fit.fit(
    create("linear", num_classes=10), optim.adam(config.learning_rate), train, val, **common
  )
  mlp = _fit.fit(
    create(
      "mlp",
      num_classes=10,
      depth=1,
      width=config.hidden,
      activation="relu",
      kernel_init="normal_0.01",
    ),
    optim.adam(config.learning_rate),
    train,
    val,
    **common,
  )
  w_linear = np.asarray(linear.variables["params"]["linear"]["kernel"]).T  # (10, D)
  w1 = np.asarray(mlp.variables["params"]["dense_0"]["kernel"]).T  # (hidden, D)
  matrix = template_class_correlation(w_linear, *train)
  corr = np.diag(matrix)
  own_best = int((matrix.argmax(1) == np.arange(len(matrix))).sum())
  # mean of the last three evaluations, to smooth the mini-batch noise of the final point
  acc_linear, acc_mlp = float(linear.val_accuracy[-3:].mean()), float(mlp.val_accuracy[-3:].mean())
  checks = [
    check_greater(
      "classes whose linear template best matches its own class's mean image (of 10; chance 1)",
      own_best,
      6,
    ),
    check_greater(
      "min over classes: corr(template c, class-c mean - overall mean)", float(corr.min()), 0.15
    ),
    check_greater("linear classifier validation accuracy", acc_linear, 0.7),
    check_greater(
      f"MLP ({config.hidden} templates) minus linear validation accuracy", acc_mlp - acc_linear, 0.0
    ),
  ]
  data = {
    "dataset": name,
    "image_shape": list(image_shape),
    "linear_val_accuracy": acc_linear,
    "mlp_val_accuracy": acc_mlp,  # last-3 means
    "template_class_correlation": corr.tolist(),
    "correlation_matrix": matrix.tolist(),
    "classes_best_matching_own_mean": own_best,
    "linear_templates": w_linear.tolist(),
    "mlp_templates": w1.tolist(),
    "steps": linear.eval_steps.tolist(),
    "linear_curve": linear.val_accuracy.tolist(),
    "mlp_curve": mlp.val_accuracy.tolist(),
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  shape = tuple(d["image_shape"])
  lin = np.asarray(d["linear_templates"])
  w1 = np.asarray(d["mlp_templates"])
  cols = len(lin)
  rows = 1 + int(np.ceil(len(w1) / cols))
  fig, axes = common.subplots(
    rows, cols, figsize=(1.6 * cols, 1.9 * rows), title=f"{TITLE} ({d['dataset']})"
  )
  for ax in axes.ravel():
    ax.axis("off")
  names = FASHION_NAMES if d["dataset"].startswith("fashion") else [str(c) for c in range(10)]
  for c, t in enumerate(lin):
    lim = np.abs(t).max() or 1.0
    axes[0, c].imshow(t.reshape(shape), cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[0, c].set_title(f"{names[c]}\ncorr {d['template_class_correlation'][c]:.2f}", fontsize=8)
  for i, t in enumerate(w1):
    ax = axes[1 + i // cols, i % cols]
    lim = np.abs(t).max() or 1.0
    ax.imshow(t.reshape(shape), cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"W1 row {i}", fontsize=8)
  fig.text(0.01, 0.83, f"linear W\n(val acc\n{d['linear_val_accuracy']:.3f})", fontsize=9)
  fig.text(0.01, 0.45, f"MLP W1\n(val acc\n{d['mlp_val_accuracy']:.3f})", fontsize=9)
  return [common.save_figure(fig, out_dir, NAME, rect=(0.05, 0, 1, 0.95))]
