"""He et al. 2016, Fig. 6: deeper plain nets train worse; residual nets do not.

On CIFAR-10 the paper's plain-56 has a higher training error than plain-20 throughout training
(the degradation problem: not overfitting, since it is the training error), while ResNet-56 is
below ResNet-20 and far below plain-56. Same architectures here (`research.models.create`:
'plainD' / 'resnetD' with `depth` = 6n + 2, option-A shortcuts, BatchNorm, He init), at reduced
scale: narrower stages (`widths`), a shallow and a deep depth, the real digits (8x8) or
Fashion-MNIST, SGD with momentum 0.9 for a few hundred steps, several seeds.

Checks (on the final training error, averaged over seeds, measured on the training set, the
training split less its validation set; degradation is about optimization, so neither the
validation nor the test split is used):
the deeper plain net above the shallower plain net, and the deeper residual net at or below its
plain counterpart. The train error is smoothed by averaging the last `tail` evaluations.
"""

from __future__ import annotations

import pathlib

import ml_collections
import numpy as np
import optax

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater
from research import optim
from research.models import count_params, create

NAME = "residual_vs_plain"
TITLE = "Plain vs residual nets (He et al. 2016 Fig. 6): deeper plain nets train worse"
CAPTION = (
  "Training error of plain and residual CIFAR-style networks (6n+2 layers, BatchNorm, He init) "
  "at two depths. Adding layers to the plain net raises its training error (degradation, not "
  "overfitting); the residual net of the same depth trains at least as well as the plain one. "
  "Thin lines: seeds; thick: their mean."
)
PAPER = common.Paper(
  source='He et al. 2016, "Deep Residual Learning for Image Recognition", Fig. 6 and Table 6',
  setup=(
    "CIFAR-10, plain and residual nets of 20 to 110 layers, SGD 0.1 (momentum 0.9, weight decay "
    "1e-4), batch 128, 64k steps"
  ),
  number=(
    "the 56-layer plain net has higher training error than the 20-layer one; with shortcuts the "
    "deeper net is better: ResNet-20 / 32 / 44 / 56 / 110 test error 8.75 / 7.51 / 7.17 / 6.97 / "
    "6.43%"
  ),
)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.depths = (8, 20)
  config.widths = (8, 16, 32)
  config.batch_size = 64
  config.steps = 200
  config.boundaries = ()
  config.learning_rate = 0.1
  config.weight_decay = 0.0
  config.eval_every = 25
  config.eval_size = 512
  config.seeds = (0,)
  config.augment = False
  config.tail = 3
  return common.sized(
    size,
    config,
    test={"depths": (8, 14), "widths": (4, 8, 8), "steps": 20, "eval_every": 10, "eval_size": 256},
    # the paper's recipe (He et al. 2016 Sec. 4.2) on CIFAR-10, for accelerators
    full={
      "dataset": "cifar10",
      "depths": (20, 56),
      "widths": (16, 32, 64),
      "batch_size": 128,
      "steps": 64_000,
      "boundaries": (32_000, 48_000),
      "weight_decay": 1e-4,
      "eval_every": 1000,
      "eval_size": 10_000,
      "augment": True,
    },
  )


def _optimizer(config):
  lr = config.learning_rate
  if config.boundaries:
    lr = optim.step_decay(config.learning_rate, tuple(config.boundaries), 0.1)
  tx = optim.heavy_ball(lr, 0.9)
  if config.weight_decay:
    tx = optax.chain(optim.add_l2_penalty(config.weight_decay), tx)
  return tx


def _augment(config):
  """CIFAR's pad-4 crop and flip (`--full` only): the engine's `crop_flip` preset."""
  return "crop_flip" if config.augment else None


def run(config: ml_collections.ConfigDict) -> FigureResult:
  name, train, val, _ = _fit.load_data(config.dataset)
  train, val = _fit.standardize(train, val)
  num_classes = int(train[1].max()) + 1
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
          _optimizer(config),
          train,
          val,
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
  checks = [
    check_greater(
      f"final training error plain-{deep} - plain-{shallow} (degradation)",
      final[f"plain{deep}"] - final[f"plain{shallow}"],
      0.0,
    ),
    check_greater(
      f"final training error plain-{deep} - resnet-{deep} (residual fixes it)",
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
    "num_params": params,
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  data = result.data
  shallow, deep = data["depths"]
  fig, axes = common.subplots(1, 2, figsize=(10, 4), sharey=True)
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
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, title="final training error", title_fontsize=8)
  axes[0].set_ylabel("training error")
  return [common.save_figure(fig, out_dir, NAME)]
