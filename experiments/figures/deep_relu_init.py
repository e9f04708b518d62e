"""He et al. 2015, Fig. 3 at small scale: a 30-layer plain ReLU net trains with He init, not Xavier.

A plain (no normalization, no shortcut) ReLU MLP of 30 hidden layers. With Xavier's
Var(w) = 1/N (for square layers 2 / (fan_in + fan_out) = 1/N) each ReLU layer halves the
signal's variance, so after 30 layers the forward signal, and the backward gradient reaching the
first layers, are about 2^-15 of the input's scale: SGD makes no progress. He's Var(w) = 2/N keeps
both at scale and the same network trains.

Model: `research.models.create('mlp', depth=30, activation='relu', kernel_init=...)`; optimizer:
`research.optim.heavy_ball` (SGD with momentum, as in the paper); data: real digits (8x8).
We record every layer's gradient norm at every step.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater, check_less
from research import optim
from research.models import create

NAME = "deep_relu_init"
TITLE = "30-layer plain ReLU network: He initialization trains, Xavier stalls (He et al. 2015)"
CAPTION = (
  "Training loss of a 30-hidden-layer plain ReLU MLP (no BN) on real digits with SGD + "
  "momentum, initialized with He N(0, 2/N) or Xavier (1/N for square layers), and the gradient "
  "norm of every layer at the first step. Under Xavier each layer halves the variance, so the "
  "gradients reaching the early layers are orders of magnitude smaller and the loss stays at "
  "its starting value; He keeps them at scale and the network trains."
)
PAPER = common.Paper(
  source='He et al. 2015, "Delving Deep into Rectifiers", Fig. 3',
  setup="a 30-layer plain ReLU network on ImageNet",
  number=(
    "with their initialization (std sqrt(2 / n)) the 30-layer net converges; with Xavier "
    "initialization it does not learn at all (its error stays where it starts)"
  ),
)

INITS = ("he_normal", "xavier_normal")


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.depth = 30
  config.width = 64
  config.batch_size = 64
  config.steps = 1000
  config.learning_rate = 0.003
  config.momentum = 0.9
  config.seed = 0
  return common.sized(size, config, test={"steps": 600}, full={"steps": 4000})


def run(config: ml_collections.ConfigDict) -> FigureResult:
  # curves on the validation set held out of the training split; nothing is chosen, no test
  name, train, val, _ = _fit.load_data(config.dataset, seed=config.seed)
  results = {}
  for init in INITS:
    model = create(
      "mlp",
      num_classes=10,
      depth=config.depth,
      width=config.width,
      activation="relu",
      kernel_init=init,
    )
    results[init] = _fit.fit_config(
      config,
      model,
      optim.heavy_ball(config.learning_rate, config.momentum),
      train,
      val,
      eval_every=config.steps // 10,
      per_layer_grads=True,
    )
  he, xavier = results["he_normal"], results["xavier_normal"]
  dense = _fit.dense_layers(he)
  first = {k: r.layer_grad_norms[0, dense] for k, r in results.items()}  # step 0, per layer
  early_ratio = float(first["he_normal"][:3].mean() / first["xavier_normal"][:3].mean())
  loss0 = {k: float(r.train_loss[0]) for k, r in results.items()}
  loss1 = {k: float(r.train_loss[-1]) for k, r in results.items()}
  checks = [
    check_less("He: final training loss / initial", loss1["he_normal"] / loss0["he_normal"], 0.3),
    check_greater("He: final validation accuracy", float(he.val_accuracy[-1]), 0.8),
    check_greater(
      "Xavier: final training loss / initial (stalls)",
      loss1["xavier_normal"] / loss0["xavier_normal"],
      0.9,
    ),
    check_less(
      "Xavier: final validation accuracy (stalls near chance 0.1)",
      float(xavier.val_accuracy[-1]),
      0.3,
    ),
    check_greater("step 0: mean grad norm of layers 1-3, He / Xavier", early_ratio, 100.0),
    check_less(
      "Xavier step 0: grad norm of layer 1 / layer 30",
      float(first["xavier_normal"][0] / first["xavier_normal"][-1]),
      0.01,
    ),
  ]
  data = {
    "dataset": name,
    "steps": he.eval_steps.tolist(),
    "train_loss": {k: r.train_loss.tolist() for k, r in results.items()},
    "val_accuracy": {k: r.val_accuracy.tolist() for k, r in results.items()},
    "first_step_layer_grad_norms": {k: v.tolist() for k, v in first.items()},
    "early_layers_grad_norm": {
      k: r.layer_grad_norms[:, dense[:3]].mean(1)[::10].tolist() for k, r in results.items()
    },
    "early_ratio_he_over_xavier": early_ratio,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  labels = {"he_normal": "He N(0, 2/N)", "xavier_normal": "Xavier N(0, 1/N)"}
  fig, axes = common.subplots(1, 3, figsize=(16, 4.3), title=TITLE)
  for k in INITS:
    axes[0].plot(d["steps"], d["train_loss"][k], "o-", ms=3, label=labels[k])
    g = d["first_step_layer_grad_norms"][k]
    axes[1].semilogy(np.arange(1, len(g) + 1), g, "o-", ms=3, label=labels[k])
    e = d["early_layers_grad_norm"][k]
    axes[2].semilogy(np.arange(len(e)) * 10, e, label=labels[k])
  axes[0].set(
    xlabel="SGD step",
    ylabel=f"training loss ({d['dataset']})",
    title="30-layer plain ReLU net: training loss",
  )
  axes[1].set(
    xlabel="hidden layer",
    ylabel="gradient norm of the layer's weights (step 0)",
    title="Per-layer gradient norms at initialization",
  )
  axes[2].set(
    xlabel="SGD step",
    ylabel="mean gradient norm, layers 1-3",
    title="Early layers' gradient norms during training",
  )
  for ax in axes:
    ax.legend(fontsize=8)
  return [common.save_figure(fig, out_dir, NAME)]
