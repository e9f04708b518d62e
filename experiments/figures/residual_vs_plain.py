"""He et al. 2016, Fig. 6: deeper plain nets train worse; residual nets do not.

On CIFAR-10 the paper's plain-56 has a higher training error than plain-20 throughout training
(the degradation problem: not overfitting, since it is the training error), while ResNet-56 is
below ResNet-20 and far below plain-56 (Table 6, test error: ResNet-20 / 32 / 44 / 56 / 110
8.75 / 7.51 / 7.17 / 6.97 / 6.43%). Same architectures here (`research.models.create`:
'plainD' / 'resnetD' with `depth` = 6n + 2, option-A shortcuts, BatchNorm, He init), the
paper's optimizer (SGD, momentum 0.9, learning rate 0.1 divided by 10 at 50% and 75% of the
steps, as its 32k / 48k of 64k; weight decay 1e-4; batch 128), on the full Fashion-MNIST
(55,000 training images, standardized).

Reductions from the paper, for about two minutes on two CPU cores:
- depths 8 and 20 (n = 1 and 3) instead of 20 and 56 (n = 3 and 9);
- widths 8 / 16 / 32 instead of 16 / 32 / 64 (19,290 and 68,122 parameters);
- a strided stem: each 28x28 image enters as its 2x2 pixel blocks stacked along the channels
  (14x14x4, `space_to_depth`; lossless), so the 3x3 stem convolution sees 6x6 pixels at stride
  2 and the three stages run on 14x14, 7x7 and 4x4 maps (CIFAR: 32, 16, 8);
- 600 steps (1.4 epochs) instead of 64,000 (164 epochs), one seed, no augmentation.

Checks (on the final training error: the mean of the last `tail` evaluations, all after the
last learning-rate drop, each on the first `eval_size` training images; degradation is about
optimization, so neither the validation nor the test split is used): the deeper plain net
above the shallower one, and the deeper residual net at or below the plain net of its depth.
The paper's third comparison, the deeper residual net below the shallower one, is recorded
(`data['resnet_depth_gain']`, shallow minus deep) and not checked: at 600 steps the two
residual nets end within the sampling noise of one another (2026-12-05: 0.1163 vs 0.1160,
the standard error of one error near 0.12 on 2,048 images being 0.007), so our numbers do not
show it either way.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np

from experiments.figures import _fit, common, problems
from experiments.figures.common import FigureResult, check_greater
from research.models import count_params, create

NAME = "residual_vs_plain"
TITLE = "Plain vs residual nets (He et al. 2016 Fig. 6): deeper plain nets train worse"
CAPTION = (
  "Training error of plain and residual CIFAR-style networks (6n+2 layers, BatchNorm, He init) "
  "at two depths on Fashion-MNIST. Adding layers to the plain net raises its training error "
  "(degradation, not overfitting); the residual net of the same depth trains at least as well "
  "as the plain one. The paper's deeper residual net is also better than its shallower one; "
  "after 1.4 epochs here the two residual nets are level (recorded, not checked). "
  "Thin lines: seeds; thick: their mean."
)
PAPER = common.Paper(
  source='He et al. 2016, "Deep Residual Learning for Image Recognition", Fig. 6 and Table 6',
  setup=(
    "CIFAR-10, plain and residual nets of 20 to 110 layers, SGD 0.1 (momentum 0.9, weight decay "
    "1e-4, divided by 10 at 32k and 48k steps), batch 128, 64k steps"
  ),
  number=(
    "the 56-layer plain net has higher training error than the 20-layer one throughout "
    "training; with shortcuts the deeper net is better: ResNet-20 / 32 / 44 / 56 / 110 test "
    "error 8.75 / 7.51 / 7.17 / 6.97 / 6.43%"
  ),
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.block = 2  # space-to-depth: 28x28x1 images enter as 14x14x4 (module docstring)
  config.depths = (8, 20)
  config.widths = (8, 16, 32)
  config.batch_size = 128
  config.steps = 600
  config.boundaries = (300, 450)
  config.learning_rate = 0.1
  config.weight_decay = 1e-4
  config.eval_every = 50
  config.eval_size = 2048
  config.seeds = (0,)
  config.augment = False
  config.tail = 3
  return common.sized(
    size,
    config,
    test={
      "dataset": "digits",
      "block": 1,
      "depths": (8, 14),
      "widths": (4, 8, 8),
      "batch_size": 64,
      "steps": 20,
      "boundaries": (10, 15),
      "eval_every": 10,
      "eval_size": 256,
      "tail": 1,
    },
    # the paper's recipe (He et al. 2016 Sec. 4.2) on CIFAR-10, for accelerators
    full={
      "dataset": "cifar10",
      "block": 1,
      "depths": (20, 56),
      "widths": (16, 32, 64),
      "steps": 64_000,
      "boundaries": (32_000, 48_000),
      "eval_every": 1000,
      "eval_size": 10_000,
      "augment": True,
    },
  )


def _optimizer(config):
  return problems.step_decay_momentum(
    "heavy_ball", config.learning_rate, tuple(config.boundaries), config.weight_decay
  )


def _augment(config):
  """CIFAR's pad-4 crop and flip (`--full` only): the engine's `crop_flip` preset."""
  return "crop_flip" if config.augment else None


def run(config: ml_collections.ConfigDict) -> FigureResult:
  name, train, val, _ = _fit.load_data(config.dataset)
  train, val = (
    (problems.space_to_depth(x, config.block), y) for x, y in _fit.standardize(train, val)
  )
  num_classes = int(train[1].max()) + 1
  tx = _optimizer(config)  # one object for every run: the compiled programs are shared by seed
  curves, params, steps = {}, {}, None
  for kind in ("plain", "resnet"):
    for depth in config.depths:
      key = f"{kind}{depth}"
      model = create(f"{kind}20", num_classes=num_classes, depth=depth, widths=tuple(config.widths))
      errors = []
      for seed in config.seeds:
        out = _fit.fit_config(
          config,
          model,
          tx,
          train,
          # the validation curve is not used: a small slice keeps its evaluations cheap
          (val[0][: config.eval_size], val[1][: config.eval_size]),
          seed=seed,
          eval_size=config.eval_size,
          augment=_augment(config),
        )
        errors.append(1.0 - out.train_accuracy)
        params[key] = count_params(out.variables["params"])
      curves[key] = np.asarray(errors)
      steps = out.eval_steps
  final = {k: float(v[:, -config.tail :].mean()) for k, v in curves.items()}
  shallow, deep = config.depths
  mean = {k: v.mean(0) for k, v in curves.items()}
  checks = [
    check_greater(
      f"final training error plain-{deep} - plain-{shallow} (degradation; paper: plain-56 "
      "above plain-20)",
      final[f"plain{deep}"] - final[f"plain{shallow}"],
      0.0,
    ),
    check_greater(
      f"final training error plain-{deep} - resnet-{deep} (residual at least as good; paper: "
      "ResNet-56 far below plain-56)",
      final[f"plain{deep}"] - final[f"resnet{deep}"],
      -1e-12,
    ),
  ]
  data = {
    "dataset": name,
    "depths": list(config.depths),
    "widths": list(config.widths),
    "steps": steps.tolist(),
    "seeds": list(config.seeds),
    "train_error": {k: v.tolist() for k, v in curves.items()},
    "final_train_error": final,
    # the paper's third comparison (not checked, see the module docstring): > 0 when deeper helps
    "resnet_depth_gain": final[f"resnet{shallow}"] - final[f"resnet{deep}"],
    # "throughout training": evaluations after step 0 with the deeper plain net above
    "plain_degradation_fraction": float(
      np.mean(mean[f"plain{deep}"][1:] > mean[f"plain{shallow}"][1:])
    ),
    "num_params": params,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  data = result.data
  shallow, deep = data["depths"]
  fig, axes = common.subplots(1, 2, figsize=(10, 4), sharey=True)
  # the log axis starts below the smallest positive error of any curve (an error of 0 is off it)
  errors = np.concatenate([np.ravel(v) for v in data["train_error"].values()])
  lowest = errors[errors > 0].min(initial=1.0)
  for ax, kind, title in zip(
    axes, ("plain", "resnet"), ("plain networks", "residual networks"), strict=True
  ):
    for depth, color in ((shallow, "tab:orange"), (deep, "tab:red")):
      err = np.asarray(data["train_error"][f"{kind}{depth}"])
      for run in err:
        ax.plot(data["steps"], run, color=color, lw=0.6, alpha=0.4)
      ax.plot(
        data["steps"],
        err.mean(0),
        color=color,
        lw=2,
        label=f"{kind}-{depth} ({data['num_params'][f'{kind}{depth}']:,} params): "
        f"{data['final_train_error'][f'{kind}{depth}']:.3f}",
      )
    ax.set_title(f"{title} on {data['dataset']}, widths {data['widths']}", fontsize=10)
    ax.set_xlabel("training step")
    ax.set_yscale("log")
    ax.set_ylim(lowest / 2, 1)
    ax.legend(fontsize=8, title="final training error", title_fontsize=8)
  axes[0].set_ylabel("training error")
  return [common.save_figure(fig, out_dir, NAME)]
