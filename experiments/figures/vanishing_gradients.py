"""Vanishing gradients with sigmoid / tanh vs ReLU; exploding gradients and clipping.

Notes 003 and slides of 004: back-propagating through a layer multiplies the gradient by W^T
and by the activation's derivative. The sigmoid's derivative is at most 1/4, so through L sigmoid
layers (with variance-preserving weights) the gradient shrinks like 4^-L; tanh's derivative is at
most 1 but below 1 off zero; ReLU's is exactly 1 on active units, so with He initialization the
gradient norm stays level across layers. When weights are too large the same product grows
instead (exploding gradients, the "cliffs" of Goodfellow et al. ch. 8) and a single SGD step can
throw the parameters far away; clipping the gradient's global norm to c bounds every step to
learning_rate * c.

Models: `research.models.create('mlp', depth=10, ...)`; optimizers: `research.optim.sgd` and
`research.optim.clip_by_global_norm`; data: real digits.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np
import optax

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_close, check_greater, check_less
from research import optim
from research.models import create

NAME = "vanishing_gradients"
TITLE = "Per-layer gradient norms: sigmoid vanishes, ReLU holds; clipping bounds exploding steps"
CAPTION = (
  "Left: the gradient norm of each layer's weights in a 10-hidden-layer MLP on real digits, "
  "averaged over the first SGD steps (sigmoid and tanh with Xavier, ReLU with He "
  "initialization): through sigmoid layers the gradient shrinks by orders of magnitude toward "
  "the input, through ReLU layers it stays level. Middle: training loss of the same runs. "
  "Right: a ReLU net with too-large N(0, 1) weights has exploding gradients; the norm of each "
  "SGD step with and without clipping the global gradient norm to c (bound learning_rate * c)."
)
PAPER = common.Paper(
  source=(
    "Glorot & Bengio 2010, Fig. 7 (back-propagated gradients per layer); Pascanu et al. 2013 "
    "(gradient clipping)"
  ),
  setup="deep tanh / sigmoid MLPs at initialization; recurrent nets for clipping",
  number=(
    "with the standard initialization the back-propagated gradients shrink from the top layer to "
    "the bottom; clipping the gradient norm bounds the step when gradients explode"
  ),
)

ACTIVATIONS = {"sigmoid": "xavier_normal", "tanh": "xavier_normal", "relu": "he_normal"}


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.depth = 10
  config.width = 64
  config.batch_size = 64
  config.steps = 400
  config.learning_rate = 0.05
  config.early_steps = 20  # gradient norms averaged over these first steps
  config.exploding_depth = 6
  config.exploding_steps = 100
  config.exploding_learning_rate = 1e-3
  config.clip_norm = 1.0
  config.seed = 0
  return common.sized(
    size, config, test={"steps": 200, "exploding_steps": 20}, full={"steps": 2000}
  )


def run(config: ml_collections.ConfigDict) -> FigureResult:
  # curves on the validation set held out of the training split; nothing is chosen, no test
  name, train, val, _ = _fit.load_data(config.dataset, seed=config.seed)
  runs = {}
  for act, init in ACTIVATIONS.items():
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
      per_layer_grads=True,
    )
  norms = {
    a: r.layer_grad_norms[: config.early_steps, _fit.dense_layers(r)].mean(0)
    for a, r in runs.items()
  }
  ratio = {a: float(n[0] / n[-1]) for a, n in norms.items()}

  exploding = create(
    "mlp",
    num_classes=10,
    depth=config.exploding_depth,
    width=config.width,
    activation="relu",
    kernel_init="normal_1",
  )
  lr, c = config.exploding_learning_rate, config.clip_norm
  plain = _fit.fit(
    exploding,
    optim.sgd(lr),
    train,
    val,
    batch_size=config.batch_size,
    steps=config.exploding_steps,
    seed=config.seed,
    eval_every=config.exploding_steps,
  )
  clipped = _fit.fit(
    exploding,
    optax.chain(optim.clip_by_global_norm(c), optim.sgd(lr)),
    train,
    val,
    batch_size=config.batch_size,
    steps=config.exploding_steps,
    seed=config.seed,
    eval_every=config.exploding_steps,
  )
  checks = [
    check_less("sigmoid: grad norm layer 1 / layer 10 (vanishes)", ratio["sigmoid"], 1e-3),
    check_greater("ReLU (He): grad norm layer 1 / layer 10 (holds)", ratio["relu"], 0.2),
    check_less("ratio sigmoid / ratio ReLU", ratio["sigmoid"] / ratio["relu"], 1e-2),
    check(
      "tanh in between: ratio sigmoid < ratio tanh < ratio ReLU",
      [ratio["sigmoid"], ratio["tanh"], ratio["relu"]],
      "increasing",
      ratio["sigmoid"] < ratio["tanh"] < ratio["relu"],
    ),
    check_greater(
      "final training loss, sigmoid minus ReLU (sigmoid trains slower)",
      float(runs["sigmoid"].train_loss[-1] - runs["relu"].train_loss[-1]),
      0.2,
    ),
    check_greater(
      "N(0,1) ReLU net: step-0 gradient norm (exploding)", float(plain.grad_norm[0]), 100.0 * c
    ),
    check_close(
      "clipped step 0: update norm = learning_rate * c",
      float(clipped.update_norm[0]),
      lr * c,
      rtol=1e-4,
    ),
    check_less(
      "clipped: largest update norm over all steps / (learning_rate * c)",
      float(np.nanmax(clipped.update_norm) / (lr * c)),
      1.0 + 1e-4,
    ),
    check_greater(
      "unclipped: largest update norm / (learning_rate * c)",
      float(np.nanmax(plain.update_norm) / (lr * c)),
      100.0,
    ),
  ]
  data = {
    "dataset": name,
    "steps": runs["relu"].eval_steps.tolist(),
    "layer_grad_norms": {a: n.tolist() for a, n in norms.items()},
    "first_over_last": ratio,
    "train_loss": {a: r.train_loss.tolist() for a, r in runs.items()},
    "update_norm_plain": plain.update_norm.tolist(),  # inf / nan once it diverges
    "update_norm_clipped": clipped.update_norm.tolist(),
    "grad_norm_plain": plain.grad_norm.tolist(),
    "step_bound": lr * c,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  fig, axes = common.subplots(1, 3, figsize=(16, 4.3), title=TITLE)
  for a, init in ACTIVATIONS.items():
    g = d["layer_grad_norms"][a]
    axes[0].semilogy(
      np.arange(1, len(g) + 1),
      g,
      "o-",
      ms=3,
      label=f"{a} ({init}), layer1/layer10 = {d['first_over_last'][a]:.1e}",
    )
    axes[1].plot(d["steps"], d["train_loss"][a], "o-", ms=3, label=a)
  axes[0].set(
    xlabel="hidden layer (1 = nearest the input)",
    ylabel="gradient norm of W_l",
    title="Per-layer gradient norms (first steps)",
  )
  axes[1].set(
    xlabel="SGD step", ylabel=f"training loss ({d['dataset']})", title="Training loss, 10-layer MLP"
  )
  steps = np.arange(len(d["update_norm_plain"]))
  plain = np.asarray(d["update_norm_plain"], dtype=float)
  finite = np.isfinite(plain)
  note = "" if finite.all() else f" (non-finite from step {int(np.argmin(finite))})"
  axes[2].semilogy(steps, plain, label="no clipping" + note)
  axes[2].semilogy(steps, d["update_norm_clipped"], label="clip global norm to c")
  axes[2].axhline(d["step_bound"], color="gray", ls=":", label="learning_rate * c")
  axes[2].set(
    xlabel="SGD step",
    ylabel="update norm ||x_{k+1} - x_k||",
    title="Exploding gradients: step sizes",
  )
  for ax in axes:
    ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
