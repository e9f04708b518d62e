"""He et al. 2015, Fig. 3 as a plain MLP: a 30-layer ReLU net trains with He init, Xavier stalls.

He et al. trained a 30-layer plain (no normalization, no shortcut) ReLU convolutional net on
ImageNet with SGD and momentum 0.9: initialized with std sqrt(2 / n) it converged; initialized
with Xavier's it stalled, its gradients diminishing, and did not converge given more epochs.

Ours is a 30-hidden-layer plain ReLU MLP of width 64 on the full Fashion-MNIST training split
(55,000 images; the 5,000 validation images held out), the paper's optimizer (SGD, momentum
0.9, `research.optim.heavy_ball`) and mini-batch 128 (the paper's ImageNet mini-batch),
learning rate 0.003 (at the paper's 0.01 the He-initialized MLP's training loss climbed back
from 0.78 at step 1,050 to 1.71 at step 1,500, 2026-12-05), 2,000 steps (4.7 epochs).
Reductions: an MLP instead of a conv net, Fashion-MNIST instead of ImageNet, width 64, learning
rate 0.003, 2,000 steps.

Why Xavier stalls: with Xavier's Var(w) = 2 / (fan_in + fan_out) = 1/N for square layers, each
ReLU layer halves the signal's variance (E[relu(s)^2] = Var(s) / 2), so after 30 layers the
forward signal, and the backward gradient reaching the first layers, are about 2^-15 of the
input's scale; He's Var(w) = 2/N keeps both level.

Measured from every step's mini-batch loss (`FitResult.step_loss`), the plateau length of a run
is the first step k at which the mean loss of steps [k, k + 20) falls below 0.9 x the mean of
steps [0, 20). Every layer's gradient norm is recorded at every step. The curves are training
loss (an optimization-speed figure) and validation accuracy; nothing is chosen, no test split.

Finding (2026-12-05, default size): on this MLP Xavier's stall is a long plateau, not a
permanent one: the loss stays at ln 10 for a few hundred steps, then falls (paper: "does not
converge even given more epochs"). The checks test the plateau and the diminishing gradients;
the later descent is recorded in `train_loss` and `plateau_steps`.
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
TITLE = "30-layer plain ReLU MLP: He initialization trains, Xavier stalls (He et al. 2015, Fig. 3)"
CAPTION = (
  "Training loss of a 30-hidden-layer plain ReLU MLP (no normalization) on Fashion-MNIST with "
  "SGD + momentum 0.9 at mini-batch 128, initialized with He N(0, 2/N) or Xavier (1/N for "
  "square layers), the gradient norm of every layer at the first step, and the early layers' "
  "gradient norms during training. Under Xavier each layer halves the variance, so the "
  "gradients reaching the early layers are orders of magnitude smaller and the loss stays at "
  "its starting value for far longer than He's; on this MLP it then leaves the plateau, where "
  "the paper's conv net never did (a finding, not a check)."
)
PAPER = common.Paper(
  source='He et al. 2015, "Delving Deep into Rectifiers", Sect. 2.3 and Fig. 3',
  setup=(
    "a 30-layer plain ReLU conv net on ImageNet, SGD with momentum 0.9, their initialization "
    "(std sqrt(2 / n)) vs Xavier's"
  ),
  number=(
    "with their initialization the 30-layer net converges; with Xavier's it completely stalls, "
    "its gradients diminishing, and does not converge even given more epochs"
  ),
)

INITS = ("he_normal", "xavier_normal")
WINDOW = 20  # steps averaged when measuring the plateau
PLATEAU_DROP = 0.9  # the plateau ends when the windowed loss falls below 0.9 x its start


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.max_train = None  # all 55,000 training images (validation held out)
  config.max_val = None  # all 5,000 validation images
  config.depth = 30
  config.width = 64
  config.batch_size = 128
  config.steps = 2000
  config.eval_every = 100
  config.learning_rate = 0.003
  config.momentum = 0.9
  config.seed = 0
  return common.sized(
    size,
    config,
    test={"max_train": 5000, "max_val": 1000, "steps": 400, "eval_every": 40},
    full={"steps": 8600, "eval_every": 430},
  )


def plateau_steps(step_loss: np.ndarray, window: int = WINDOW, drop: float = PLATEAU_DROP) -> int:
  """First step k with mean(loss[k : k + window]) < drop x mean(loss[:window]); len(loss) if
  the windowed loss never falls that far."""
  loss = np.asarray(step_loss, np.float64)
  windowed = np.convolve(loss, np.ones(window) / window, mode="valid")  # windowed[k]: [k, k+w)
  below = np.flatnonzero(windowed < drop * windowed[0])
  return int(below[0]) if below.size else len(loss)


def run(config: ml_collections.ConfigDict) -> FigureResult:
  data = _fit.load_data(
    config.dataset, max_train=config.max_train, max_val=config.max_val, seed=config.seed
  )
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
      data.train,
      data.validation,
      per_layer_grads=True,
    )
  he = results["he_normal"]
  dense = _fit.dense_layers(he)
  first = {k: r.layer_grad_norms[0, dense] for k, r in results.items()}  # step 0, per layer
  early_ratio = float(first["he_normal"][:3].mean() / first["xavier_normal"][:3].mean())
  plateau = {k: plateau_steps(r.step_loss) for k, r in results.items()}
  loss0 = {k: float(r.train_loss[0]) for k, r in results.items()}
  loss1 = {k: float(r.train_loss[-1]) for k, r in results.items()}
  checks = [
    check_less(
      "He: final training loss / initial (converges)", loss1["he_normal"] / loss0["he_normal"], 0.3
    ),
    check_greater(
      "plateau length (steps until the 20-step mean loss falls below 0.9 x its start): "
      "Xavier / He (Xavier stalls)",
      plateau["xavier_normal"] / max(plateau["he_normal"], 1),
      10.0,
    ),
    check_greater("step 0: mean grad norm of layers 1-3, He / Xavier", early_ratio, 100.0),
    check_less(
      "Xavier step 0: grad norm of layer 1 / layer 30 (gradients diminish toward the input)",
      float(first["xavier_normal"][0] / first["xavier_normal"][-1]),
      0.01,
    ),
  ]
  data_out = {
    "dataset": data.name,
    "train_size": len(data.train[0]),
    "steps": he.eval_steps.tolist(),
    "train_loss": {k: r.train_loss.tolist() for k, r in results.items()},
    "val_accuracy": {k: r.val_accuracy.tolist() for k, r in results.items()},
    "plateau_steps": plateau,
    "first_step_layer_grad_norms": {k: v.tolist() for k, v in first.items()},
    "early_layers_grad_norm": {
      k: r.layer_grad_norms[:, dense[:3]].mean(1)[::10].tolist() for k, r in results.items()
    },
    "early_ratio_he_over_xavier": early_ratio,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data_out, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  labels = {"he_normal": "He N(0, 2/N)", "xavier_normal": "Xavier N(0, 1/N)"}
  fig, axes = common.subplots(1, 3, figsize=(16, 4.3), title=TITLE)
  for k in INITS:
    axes[0].plot(
      d["steps"],
      d["train_loss"][k],
      "o-",
      ms=3,
      label=f"{labels[k]} (plateau {d['plateau_steps'][k]} steps)",
    )
    g = d["first_step_layer_grad_norms"][k]
    axes[1].semilogy(np.arange(1, len(g) + 1), g, "o-", ms=3, label=labels[k])
    e = d["early_layers_grad_norm"][k]
    axes[2].semilogy(np.arange(len(e)) * 10, e, label=labels[k])
  axes[0].set(
    xlabel="SGD step (batch 128)",
    ylabel=f"training loss ({d['dataset']})",
    title="30-layer plain ReLU MLP: training loss",
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
