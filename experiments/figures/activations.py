"""Sigmoid, tanh, ReLU, Leaky ReLU, PReLU, ELU and Maxout on the same network: training curves.

Slides 74-80 of 004 and notes 003: sigmoid and tanh saturate and their derivatives are below 1
(at most 1/4 for the sigmoid), so gradients shrink through depth and training is slow; ReLU
passes gradients unchanged on active units and converges faster, Leaky ReLU (slope 0.01 for
x < 0), PReLU (learned slope, initialized 0.25), ELU and Maxout (max of k = 2 linear pieces)
keep that property while avoiding dead units. The slides recommend ReLU / Leaky ReLU.

Every run: `research.models.create('mlp', depth=4, width=64, activation=...)`, the
initialization the slides pair with the activation (Xavier for sigmoid / tanh, He otherwise),
`research.optim.sgd`, the same seed, batches and steps, real digits.
"""

from __future__ import annotations

import pathlib

import jax
import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_greater
from research import optim
from research.models import create

NAME = "activations"
TITLE = "Seven activations on the same 4-hidden-layer MLP: training loss and validation accuracy"
CAPTION = (
  "The same 4-hidden-layer MLP trained with plain SGD on real digits with each activation "
  "(Xavier initialization for sigmoid and tanh, He for the rest). The ReLU family (ReLU, Leaky "
  "ReLU, PReLU, ELU, Maxout) drives the training loss down fastest; tanh follows; the sigmoid "
  "lags far behind, as its derivative of at most 1/4 shrinks the gradient at every layer."
)
PAPER = common.Paper(
  source=(
    'Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural '
    'networks", Table 1'
  ),
  setup=(
    "MNIST (and Shapeset, CIFAR-10), 5 hidden layers of 1000 units, sigmoid / tanh / softsign, "
    "standard vs normalized initialization"
  ),
  number=(
    "the logistic sigmoid gives the highest test error of the activations compared; tanh and "
    "softsign train better, and normalized initialization helps tanh"
  ),
)

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "maxout")
RELU_FAMILY = ("relu", "leaky_relu", "prelu", "elu", "maxout")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.depth = 4
  config.width = 64
  config.batch_size = 64
  config.steps = 500
  config.learning_rate = 0.05
  config.seed = 0
  return common.sized(size, config, test={"steps": 200}, full={"steps": 3000})


def run(config: ml_collections.ConfigDict) -> FigureResult:
  # curves on the validation set held out of the training split; nothing is chosen, no test
  name, train, val, _ = _fit.load_data(config.dataset, seed=config.seed)
  runs = {}
  for act in ACTIVATIONS:
    init = "xavier_normal" if act in ("sigmoid", "tanh") else "he_normal"
    model = create(
      "mlp",
      num_classes=10,
      depth=config.depth,
      width=config.width,
      activation=act,
      kernel_init=init,
    )
    runs[act] = _fit.fit_config(
      config,
      model,
      optim.sgd(config.learning_rate),
      train,
      val,
      eval_every=config.steps // 10,
    )
  # area under the training-loss curve (mean over the evaluation points): lower = faster
  mean_loss = {a: float(r.train_loss.mean()) for a, r in runs.items()}
  final_acc = {a: float(r.val_accuracy[-1]) for a, r in runs.items()}
  flat = jax.tree_util.tree_flatten_with_path(runs["prelu"].variables["params"])[0]
  slopes = [
    float(np.asarray(leaf).mean())
    for path, leaf in flat
    if getattr(path[-1], "key", None) == "slope"
  ]
  worst_relu = max(mean_loss[a] for a in RELU_FAMILY)
  checks = [
    check_greater(
      "mean training loss over the run: sigmoid / worst of the ReLU family",
      mean_loss["sigmoid"] / worst_relu,
      1.5,
    ),
    check_greater(
      "mean training loss: sigmoid / tanh", mean_loss["sigmoid"] / mean_loss["tanh"], 1.2
    ),
    check(
      "final validation accuracy of every ReLU-family activation > 0.85",
      {a: final_acc[a] for a in RELU_FAMILY},
      "> 0.85",
      all(final_acc[a] > 0.85 for a in RELU_FAMILY),
    ),
    check(
      "PReLU: one slope per hidden layer, each moved from its initial 0.25 (learned)",
      slopes,
      f"{config.depth} values != 0.25",
      len(slopes) == config.depth and all(abs(s - 0.25) > 1e-4 for s in slopes),
    ),
  ]
  data = {
    "dataset": name,
    "steps": runs["relu"].eval_steps.tolist(),
    "train_loss": {a: r.train_loss.tolist() for a, r in runs.items()},
    "val_accuracy": {a: r.val_accuracy.tolist() for a, r in runs.items()},
    "mean_train_loss": mean_loss,
    "final_val_accuracy": final_acc,
    "prelu_slopes": slopes,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  fig, axes = common.subplots(1, 3, figsize=(16, 4.3), title=TITLE)
  z = np.linspace(-3, 3, 301)
  shapes = {
    "sigmoid": 1 / (1 + np.exp(-z)),
    "tanh": np.tanh(z),
    "relu": np.maximum(z, 0),
    "leaky_relu": np.where(z > 0, z, 0.01 * z),
    "prelu": np.where(z > 0, z, 0.25 * z),
    "elu": np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1),
    "maxout": np.maximum(0.5 * z - 0.5, -0.3 * z),
  }
  for a in ACTIVATIONS:
    style = "--" if a in ("sigmoid", "tanh") else "-"
    axes[0].plot(z, shapes[a], style, label=a)
    axes[1].plot(d["steps"], d["train_loss"][a], style, marker="o", ms=3, label=a)
    axes[2].plot(
      d["steps"],
      d["val_accuracy"][a],
      style,
      marker="o",
      ms=3,
      label=f"{a} ({d['final_val_accuracy'][a]:.3f})",
    )
  axes[0].set(
    xlabel="x",
    ylabel="f(x)",
    title="The activations (PReLU at slope 0.25; a 2-piece Maxout example)",
    ylim=(-1.5, 3),
  )
  axes[0].title.set_fontsize(9)
  axes[1].set(xlabel="SGD step", ylabel=f"training loss ({d['dataset']})", title="Training loss")
  axes[2].set(xlabel="SGD step", ylabel="validation accuracy", title="Validation accuracy")
  for ax in axes:
    ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
