"""Sigmoid, tanh, ReLU, Leaky ReLU, PReLU, ELU and Maxout on the same deep MLP (Glorot & Bengio).

Slides 74-88 of 004 and notes 003: sigmoid and tanh saturate and their derivatives are below 1
(at most 1/4 for the sigmoid), so gradients shrink through depth and training is slow; ReLU
passes gradients unchanged on active units and converges faster, Leaky ReLU (slope 0.01 for
x < 0), PReLU (learned slope, initialized 0.25), ELU and Maxout (max of k = 2 linear pieces)
keep that property while avoiding dead units. The slides recommend ReLU / Leaky ReLU (004 ~1713:
"相对于Sigmoid/tanh ... 训练过程收敛得更快").

Glorot & Bengio (2010) trained MLPs of 5 hidden layers of 1,000 units with plain SGD at
mini-batch 10 from their "standard" initialization W ~ U[-1/sqrt(n), 1/sqrt(n)] (n = fan_in,
Var W = 1/(3n)). Their abstract: the logistic sigmoid is unsuited for deep networks with random
initialization because its mean value drives especially the top hidden layer into saturation
(their Fig. 2: the top layer's sigmoid outputs fall to ~0 and stay there for many epochs);
their Table 1 reports the sigmoid's test error as the highest of the activations compared
(sigmoid, tanh, softsign).

Our setup, the same for every activation: `research.models.create('mlp', depth=5, width=100,
activation=...)`; sigmoid and tanh with Glorot's standard initialization (as Table 1's rows
without "N"), the ReLU family with He's N(0, 2/n) (He et al. 2015, the slides' pairing);
`research.optim.sgd` at mini-batch 10 (the paper's), learning rate 0.01 for all (the paper
chose one per network on validation; 0.05 makes Maxout diverge); one epoch of the full
Fashion-MNIST training split (5,500 steps of 10 of the 55,000 images left after the 5,000
validation images are held out). Reductions from the paper: width 100 instead of 1,000 (CPU
time), Fashion-MNIST instead of MNIST / Shapeset / CIFAR-10, one epoch, one learning rate.
Each run keeps its best-validation parameters and the full test split (10,000) is evaluated
once on them (the test errors of Table 1's kind).

Training speed is the mean training loss over the evaluations after step 0 (the area under the
curve, lower = faster; step 0 measures the initialization, not training). Saturation is the
mean output of each sigmoid hidden layer over 1,000 fixed validation images at every
evaluation (Glorot & Bengio's Fig. 2 statistic).

Finding (2026-12-05, default size): the sigmoid network stays on the plateau at chance for the
whole epoch (the paper's slow training), but its top hidden layer does not saturate within it:
its mean output only drifts from 0.497 to 0.477, monotonically toward 0. The saturation is a
matter of step size: the same network at learning rate 0.1 brings it to 0.068 and at 1.0 to
0.015 within 550 steps while the layers below rise (0.67 and 0.84 in layer 4), the pattern of
the paper's Fig. 2. We keep the one learning rate shared by all seven activations, so the
saturation is recorded (`sigmoid_layer_means`) and not checked.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_greater, check_less
from research import optim
from research.models import create, diagnostics

NAME = "activations"
TITLE = "Seven activations on the same 5-hidden-layer MLP (Glorot & Bengio 2010): SGD, batch 10"
CAPTION = (
  "The same 5-hidden-layer MLP trained for one epoch of Fashion-MNIST with plain SGD at "
  "mini-batch 10, with each activation (Glorot's standard initialization U[-1/sqrt(n), "
  "1/sqrt(n)] for sigmoid and tanh, He's for the rest). The sigmoid network stays at chance for "
  "the whole epoch; tanh trains; the ReLU family (ReLU, Leaky ReLU, PReLU, ELU, Maxout) drives "
  "the training loss down fastest. Right: the mean output of each sigmoid layer over training "
  "(Glorot & Bengio's Fig. 2): at this shared learning rate the top layer's drifts toward 0 "
  "but does not reach the paper's saturation within the epoch (a finding, not a check)."
)
PAPER = common.Paper(
  source=(
    'Glorot & Bengio 2010, "Understanding the difficulty of training deep feedforward neural '
    'networks", abstract, Fig. 2 and Table 1; notes 004 ~1713 (activation summary)'
  ),
  setup=(
    "MNIST, Shapeset, CIFAR-10, Small-ImageNet; 5 hidden layers of 1,000 units, SGD at "
    "mini-batch 10; sigmoid / tanh / softsign, standard U[-1/sqrt(n), 1/sqrt(n)] vs normalized "
    "initialization"
  ),
  number=(
    "the logistic sigmoid with random initialization drives the top hidden layer into "
    "saturation (outputs near 0) and trains slowly; its test error is the highest of the "
    "activations compared (Table 1); the notes: ReLU / Leaky ReLU converge faster than "
    "sigmoid / tanh"
  ),
)

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "maxout")
RELU_FAMILY = ("relu", "leaky_relu", "prelu", "elu", "maxout")
# Glorot & Bengio's standard initialization U[-1/sqrt(n), 1/sqrt(n)], n = fan_in: Var = 1/(3n)
STANDARD_INIT = "heuristic_uniform"  # research.models.initializers
CHANCE_LOSS = float(np.log(10.0))  # cross-entropy of the uniform prediction over 10 classes


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.max_train = None  # all 55,000 training images (validation held out)
  config.max_val = None  # all 5,000 validation images
  config.max_test = None  # all 10,000 test images, evaluated once per activation
  config.depth = 5
  config.width = 100
  config.batch_size = 10
  config.steps = 5500  # one epoch of 55,000 images at batch 10
  config.eval_every = 550
  config.learning_rate = 0.01
  config.probe_size = 1000
  config.seed = 0
  return common.sized(
    size,
    config,
    test={
      "max_train": 5000,
      "max_val": 1000,
      "max_test": 1000,
      "steps": 1000,
      "eval_every": 100,
      "width": 64,
    },
    full={"dataset": "mnist", "width": 1000, "steps": 55_000, "eval_every": 2750},
  )


def kernel_init(activation: str):
  """Glorot's standard initialization for sigmoid and tanh, He's for the ReLU family."""
  return STANDARD_INIT if activation in ("sigmoid", "tanh") else "he_normal"


def layer_means(model, depth: int, x: jax.Array):
  """probe(variables) -> (depth,) mean output of each hidden activation 'act_i' over `x`, from
  `research.models.diagnostics.activation_stats`."""
  names = [f"act_{i}" for i in range(depth)]

  def probe(variables):
    stats = diagnostics.activation_stats(model, variables, x)
    if [s.name for s in stats] != names:
      raise ValueError(f"expected the activations {names}, got {[s.name for s in stats]}")
    return jnp.stack([s.mean for s in stats])

  return probe


def prelu_slopes(params) -> list[float]:
  """The learned PReLU slope of every hidden layer, in tree order."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return [
    float(np.asarray(leaf).mean())
    for path, leaf in flat
    if getattr(path[-1], "key", None) == "slope"
  ]


def run(config: ml_collections.ConfigDict) -> FigureResult:
  data = _fit.load_data(
    config.dataset,
    max_train=config.max_train,
    max_val=config.max_val,
    max_test=config.max_test,
    seed=config.seed,
  )
  probe_x = jnp.asarray(data.validation[0][: config.probe_size])
  runs = {}
  for act in ACTIVATIONS:
    model = create(
      "mlp",
      num_classes=10,
      depth=config.depth,
      width=config.width,
      activation=act,
      kernel_init=kernel_init(act),
    )
    runs[act] = _fit.fit_config(
      config,
      model,
      optim.sgd(config.learning_rate),
      data.train,
      data.validation,
      test=data.test,
      probe=layer_means(model, config.depth, probe_x) if act == "sigmoid" else None,
    )
  mean_loss = {a: float(r.train_loss[1:].mean()) for a, r in runs.items()}
  final_acc = {a: float(r.val_accuracy[-1]) for a, r in runs.items()}
  test_error = {a: 1.0 - float(r.test["accuracy"]) for a, r in runs.items()}
  sigmoid_means = np.asarray(runs["sigmoid"].probes)  # (E, depth)
  slopes = prelu_slopes(runs["prelu"].variables["params"])
  worst_relu = max(mean_loss[a] for a in RELU_FAMILY)
  fast = max(mean_loss["relu"], mean_loss["leaky_relu"])
  slow = min(mean_loss["sigmoid"], mean_loss["tanh"])
  checks = [
    check_greater(
      "sigmoid: final training loss / ln 10 (the loss at chance; > 0.95: still on the plateau)",
      float(runs["sigmoid"].train_loss[-1]) / CHANCE_LOSS,
      0.95,
    ),
    check_greater(
      "test error (best-validation parameters, test evaluated once): sigmoid - tanh "
      "(Table 1: the sigmoid's is the highest)",
      test_error["sigmoid"] - test_error["tanh"],
      0.0,
    ),
    check_less(
      "mean training loss after step 0: max(ReLU, Leaky ReLU) / min(sigmoid, tanh) "
      "(notes: ReLU / Leaky ReLU converge faster)",
      fast / slow,
      1.0,
    ),
    check_greater(
      "mean training loss after step 0: sigmoid / worst of the ReLU family",
      mean_loss["sigmoid"] / worst_relu,
      1.5,
    ),
    check(
      "PReLU: one slope per hidden layer, each moved from its initial 0.25 (learned)",
      slopes,
      f"{config.depth} values != 0.25",
      len(slopes) == config.depth and all(abs(s - 0.25) > 1e-4 for s in slopes),
    ),
  ]
  data_out = {
    "dataset": data.name,
    "train_size": len(data.train[0]),
    "steps": runs["relu"].eval_steps.tolist(),
    "train_loss": {a: r.train_loss.tolist() for a, r in runs.items()},
    "val_accuracy": {a: r.val_accuracy.tolist() for a, r in runs.items()},
    "mean_train_loss": mean_loss,
    "final_val_accuracy": final_acc,
    "test_error": test_error,
    "sigmoid_layer_means": sigmoid_means.tolist(),  # (evaluations, layers)
    "sigmoid_top_layer_mean": {"start": sigmoid_means[0, -1], "end": sigmoid_means[-1, -1]},
    "prelu_slopes": slopes,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data_out, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  fig, axes = common.subplots(1, 4, figsize=(21, 4.3), title=TITLE)
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
      label=f"{a} (test error {d['test_error'][a]:.3f})",
    )
  means = np.asarray(d["sigmoid_layer_means"])
  for i in range(means.shape[1]):
    axes[3].plot(d["steps"], means[:, i], marker="o", ms=3, label=f"layer {i + 1}")
  axes[0].set(
    xlabel="x",
    ylabel="f(x)",
    title="The activations (PReLU at slope 0.25; a 2-piece Maxout example)",
    ylim=(-1.5, 3),
  )
  axes[0].title.set_fontsize(9)
  axes[1].set(
    xlabel="SGD step (batch 10)", ylabel=f"training loss ({d['dataset']})", title="Training loss"
  )
  axes[2].set(xlabel="SGD step", ylabel="validation accuracy", title="Validation accuracy")
  axes[3].set(
    xlabel="SGD step",
    ylabel="mean sigmoid output (1,000 validation images)",
    title="Sigmoid net: hidden layers' mean output",
    ylim=(-0.02, 1.02),
  )
  for ax in axes:
    ax.legend(fontsize=7)
  return [common.save_figure(fig, out_dir, NAME)]
