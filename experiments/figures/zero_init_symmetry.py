"""Zero (or constant) initialization: all hidden units of a layer stay identical through training.

Slides 126-127 of 004 (notes 004 ~2628, ~2647): "全零初始化：网络中不同的神经元有相同的输出，
进行同样的参数更新；因此，这些神经元学到的参数都一样，等价于一个神经元" -- with W = 0 every unit of
a layer computes the same output, receives the same gradient and makes the same update, so the
layer behaves like a single unit; the slides advise random initialization (and notes 002 ~196:
the initial parameters must break the symmetry between units). We train the same 2-hidden-layer MLP
(`research.models.create('mlp')`, 32 sigmoid units per layer, so that zero weights still pass a
signal of 0.5 and the gradients are not all zero) from three starting points: all zeros, all
0.05 (He's scale sqrt(2 / 784) as a constant) and He-normal random weights, with plain SGD
(`research.optim.sgd`, batch 64, learning rate 0.5) for one epoch of the full Fashion-MNIST
training split (860 steps over the 55,000 images left after the 5,000 validation images are
held out), and measure after training

    max_{i,j} max_k |W[k, i] - W[k, j]|     (units i, j of the same layer: columns of W)

for each hidden layer (exactly 0 under symmetry), how far the weights moved from their start,
and the validation accuracy (curves on the validation set; nothing is chosen, no test split).
The notes give no network or data for this claim; the setup is ours. With 784 inputs the
constant 0.05 puts the first layer's sigmoids deep in saturation (pre-activation 0.05 x the
image's pixel sum, `constant_preactivation`), so its first-layer weights barely move; the
second layer's move freely.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_greater
from research import optim
from research.models import create, initializers

NAME = "zero_init_symmetry"
TITLE = "Zero / constant initialization: the hidden units stay identical"
CAPTION = (
  "A 2-hidden-layer sigmoid MLP trained for one epoch of Fashion-MNIST from zero weights, "
  "constant 0.05 weights and He-normal random weights. Under zero or constant initialization "
  "every hidden unit's weight vector stays exactly equal to every other's (the largest "
  "difference between units is 0), so each layer acts like one unit and the accuracy stays far "
  "below the randomly initialized network's."
)
PAPER = common.Paper(
  source="the lecture, notes 004 ~2628 and ~2647 (slides 126-127); notes 002 ~196",
  setup="any MLP initialized to zeros (or one constant)",
  number=(
    "全零初始化: the hidden units have the same outputs and receive the same updates, so they "
    "learn the same parameters and the layer is equivalent to one unit; use random "
    "initialization (no numbers)"
  ),
)

CASES = ("zeros", "constant_0.05", "he_normal")
INITIAL_VALUE = {"zeros": 0.0, "constant_0.05": 0.05}
# Symmetric units receive identical gradients, but XLA may sum them in a different order per
# unit (vectorized reductions differ between CPUs), so "identical" means equal to float32
# round-off of weights of order 0.1: 100 x eps_32 x 0.1 ~ 1e-6, far below the >= 0.1 spread
# of random initialization.
ROUNDOFF = 1e-6


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.max_train = None  # all 55,000 training images (validation held out)
  config.max_val = None  # all 5,000 validation images
  config.depth = 2
  config.width = 32
  config.batch_size = 64
  config.steps = 860  # one epoch of 55,000 images at batch 64
  config.eval_every = 86
  config.learning_rate = 0.5
  config.seed = 0
  return common.sized(
    size,
    config,
    test={"max_train": 5000, "max_val": 1000, "steps": 200, "eval_every": 20},
    full={"steps": 8600, "eval_every": 860},
  )


def _kernel_init(case: str):
  if case == "constant_0.05":
    return initializers.constant(0.05)
  return initializers.get(case)


def unit_spread(kernel: np.ndarray) -> float:
  """max over unit pairs of max_k |W[k, i] - W[k, j]| for a (fan_in, units) kernel."""
  return float(np.max(kernel.max(axis=1) - kernel.min(axis=1)))


def run(config: ml_collections.ConfigDict) -> FigureResult:
  # curves on the validation set held out of the training split; nothing is chosen, no test
  name, train, val, _ = _fit.load_data(
    config.dataset, max_train=config.max_train, max_val=config.max_val, seed=config.seed
  )
  data = {
    "dataset": name,
    "train_size": len(train[0]),
    # the first layer's pre-activation under the constant init: 0.05 x the mean pixel sum
    "constant_preactivation": INITIAL_VALUE["constant_0.05"]
    * float(train[0].reshape(len(train[0]), -1).sum(1).mean()),
    "steps": None,
    "val_accuracy": {},
    "train_loss": {},
    "unit_spread": {},
    "kernels": {},
  }
  for case in CASES:
    model = create(
      "mlp",
      num_classes=10,
      depth=config.depth,
      width=config.width,
      activation="sigmoid",
      kernel_init=_kernel_init(case),
      bias_init="zeros",
    )
    result = _fit.fit_config(
      config,
      model,
      optim.sgd(config.learning_rate),
      train,
      val,
    )
    params = result.variables["params"]
    kernels = [np.asarray(params[f"dense_{i}"]["kernel"]) for i in range(config.depth)]
    data["steps"] = result.eval_steps.tolist()
    data["val_accuracy"][case] = result.val_accuracy.tolist()
    data["train_loss"][case] = result.train_loss.tolist()
    data["unit_spread"][case] = [unit_spread(k) for k in kernels]
    # first 16 units of layer 1, minus the constant initial value for the symmetric cases
    data["kernels"][case] = (kernels[0][:, :16].T - INITIAL_VALUE.get(case, 0.0)).tolist()
    if case in INITIAL_VALUE:  # per hidden layer: the largest change of a weight
      data.setdefault("moved", {})[case] = [
        float(np.abs(k - INITIAL_VALUE[case]).max()) for k in kernels
      ]

  spread = data["unit_spread"]
  acc = {c: data["val_accuracy"][c][-1] for c in CASES}
  checks = [
    check(
      "zero init: max difference between units' weights after training (per layer)",
      spread["zeros"],
      f"<= {ROUNDOFF:g} (float32 round-off)",
      all(s <= ROUNDOFF for s in spread["zeros"]),
    ),
    check(
      "constant 0.05 init: max difference between units' weights after training",
      spread["constant_0.05"],
      f"<= {ROUNDOFF:g} (float32 round-off)",
      all(s <= ROUNDOFF for s in spread["constant_0.05"]),
    ),
    check_greater(
      "constant 0.05 init: the weights did move (largest change of a hidden weight, not frozen)",
      max(data["moved"]["constant_0.05"]),
      1e-3,
    ),
    check_greater(
      "random He init: min over layers of the units' weight difference",
      min(spread["he_normal"]),
      0.1,
    ),
    check_greater(
      "val accuracy: random init minus the better symmetric init",
      acc["he_normal"] - max(acc["zeros"], acc["constant_0.05"]),
      0.3,
    ),
  ]
  data["final_val_accuracy"] = acc
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  fig, axes = common.subplots(
    1, 4, figsize=(18, 4.2), title=TITLE, gridspec_kw={"width_ratios": [1.3, 1, 1, 1]}
  )
  ax = axes[0]
  for case in CASES:
    ax.plot(
      d["steps"],
      d["val_accuracy"][case],
      label=f"{case} (unit spread {d['unit_spread'][case][0]:.3g})",
    )
  ax.set_xlabel("SGD step")
  ax.set_ylabel(f"validation accuracy ({d['dataset']})")
  ax.set_title("Training from symmetric vs random weights")
  ax.legend(fontsize=8)
  for ax, case in zip(axes[1:], CASES, strict=True):
    k = np.asarray(d["kernels"][case])
    lim = float(np.abs(k).max()) or 1.0
    im = ax.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xlabel("input pixel k")
    ax.set_ylabel("hidden unit i (layer 1)")
    ax.set_title(
      f"{case}: W[:, i] after training"
      + (f" - {INITIAL_VALUE[case]:g}" if INITIAL_VALUE.get(case) else ""),
      fontsize=10,
    )
    fig.colorbar(im, ax=ax, fraction=0.046)
  return [common.save_figure(fig, out_dir, NAME)]
