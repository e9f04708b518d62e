"""BN, LN, GN and IN across per-device batch sizes (the idea of Wu & He 2018, Fig. 1).

Notes 000, normalization section: batch norm estimates each channel's mean and variance from
the examples of one device's batch, so with few examples per device the estimates are noisy and
differ from the running averages used at test time; layer, instance and group norm compute
their statistics inside each example and do not depend on the batch at all.

We train the same small CNN (two 3x3 convolutions with 16 and 32 channels, each followed by the
normalization from `research.models.layers` (GroupNorm with 4 groups) and ReLU, global average
pooling, a dense head) on real digits with a fixed total batch of 32, split into groups of
`per-device batch` examples that are normalized separately, exactly as unsynchronized
per-device BN does on that many devices (`research.models.layers.BatchNorm`'s
`ghost_batch_size`). Only the statistics' batch changes; the data, steps and optimizer
(`research.optim.heavy_ball`) are the same.
"""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check_greater, check_less
from research import optim
from research.models import initializers, layers

NAME = "norms_vs_batch_size"
TITLE = "Validation error vs per-device batch size for BN, LN, GN and IN (small CNN, digits)"
CAPTION = (
  "A small CNN trained with a total batch of 32 whose normalization statistics are computed "
  "per device on 32 or 2 examples (32, 8, 4, 2 with --full). Batch norm's validation loss and "
  "error grow as the per-device batch shrinks (noisy batch statistics that disagree with the "
  "running averages used at test time); "
  "group, layer and instance norm normalize within each example and stay flat."
)
PAPER = common.Paper(
  source='Wu & He 2018, "Group Normalization", Table 2 and Fig. 1',
  setup="ResNet-50 on ImageNet, 32 down to 2 images per GPU",
  number=(
    "BN error 23.6% at 32 images per GPU rises to 34.7% at 2; GN stays at 24.1% (10.6 points "
    "below BN at 2); LN and IN are worse than GN at every batch size"
  ),
)

NORMS = {"batch": "BN", "layer": "LN", "group": "GN", "instance": "IN"}


class NormalizedCNN(nn.Module):
  """conv3x3(c1) - norm - ReLU - conv3x3(c2, stride 2) - norm - ReLU - mean pool - dense.

  The normalizations are the package's (`research.models.layers`); GroupNorm uses `groups`
  groups of channels; batch norm computes its statistics over groups of `per_device` examples.
  """

  norm: str
  num_classes: int = 10
  channels: tuple[int, int] = (16, 32)
  groups: int = 4
  per_device: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for i, (c, stride) in enumerate(zip(self.channels, (1, 2), strict=True)):
      x = nn.Conv(
        c,
        (3, 3),
        strides=stride,
        padding="SAME",
        use_bias=False,
        kernel_init=initializers.get("he_normal"),
        name=f"conv_{i}",
      )(x)
      if self.norm == "group":  # 4 groups: with 16 / 32 channels, 32 groups would be IN
        x = layers.GroupNorm(num_groups=self.groups, name=f"norm_{i}")(x)
      else:
        x = layers.norm(self.norm, train=train, name=f"norm_{i}", ghost_batch_size=self.per_device)(
          x
        )
      x = nn.relu(x)
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.num_classes, name="head")(x)


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "digits"
  config.batch_size = 32
  config.per_device = (32, 2)
  config.norms = tuple(NORMS)  # a subset runs faster (the test size)
  config.steps = 300
  config.learning_rate = 0.05
  config.momentum = 0.9
  config.seed = 0
  return common.sized(
    size,
    config,
    test={"norms": ("batch", "group"), "steps": 210},
    full={"per_device": (32, 8, 4, 2), "steps": 2000},
  )


def run(config: ml_collections.ConfigDict) -> FigureResult:
  # curves on the validation set held out of the training split; nothing is chosen, no test
  name, train, val, _ = _fit.load_data(config.dataset, seed=config.seed)
  unknown = sorted(set(config.norms) - set(NORMS))
  if unknown or "batch" not in config.norms:
    raise ValueError(
      f"config.norms={tuple(config.norms)} must include 'batch' and only names from {tuple(NORMS)}"
    )
  error = {k: [] for k in config.norms}
  loss = {k: [] for k in config.norms}
  for norm in config.norms:
    for b in config.per_device:
      result = _fit.fit_config(
        config,
        NormalizedCNN(norm, per_device=b),
        optim.heavy_ball(config.learning_rate, config.momentum),
        train,
        val,
        eval_every=config.steps // 3,
      )
      # mean of the last two evaluations, to smooth the mini-batch noise of one point
      error[norm].append(float(1.0 - result.val_accuracy[-2:].mean()))
      loss[norm].append(float(result.val_loss[-2:].mean()))
  err = {k: np.asarray(v) for k, v in error.items()}
  # validation loss relative to the largest per-device batch: continuous, so it is not swamped
  # by the few-image noise of the error on the 287 held-out validation digits
  rel = {k: np.asarray(v) / v[0] for k, v in loss.items()}
  sizes = list(config.per_device)
  big, small = sizes.index(max(sizes)), sizes.index(min(sizes))
  checks = [
    check_greater(
      f"BN: validation loss at per-device batch {sizes[small]} / at {sizes[big]}",
      float(rel["batch"][small] / rel["batch"][big]),
      1.25,
    ),
    check_greater(
      f"BN: validation error at per-device batch {sizes[small]} minus at {sizes[big]}",
      float(err["batch"][small] - err["batch"][big]),
      0.02,
    ),
  ]
  for k in (k for k in ("group", "layer", "instance") if k in config.norms):
    checks.append(
      check_less(
        f"{NORMS[k]}: largest deviation of validation loss / loss at "
        f"per-device batch {sizes[big]} (flat)",
        float(np.abs(rel[k] - 1.0).max()),
        0.1,
      )
    )
  data = {
    "dataset": name,
    "per_device_batch": sizes,
    "total_batch": config.batch_size,
    "val_error": {k: v.tolist() for k, v in err.items()},
    "val_loss": {k: list(v) for k, v in loss.items()},
  }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  sizes = d["per_device_batch"]
  fig, axes = common.subplots(1, 2, figsize=(12, 4.5), title=TITLE)
  for k, label in NORMS.items():
    if k not in d["val_error"]:
      continue
    axes[0].plot(sizes, 100 * np.asarray(d["val_error"][k]), "o-", label=label)
    axes[1].plot(sizes, d["val_loss"][k], "o-", label=label)
  for ax in axes:
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.invert_xaxis()
    ax.set_xlabel(f"examples per device (statistics' batch), total batch {d['total_batch']}")
    ax.legend()
  axes[0].set_ylabel(f"validation error (%), {d['dataset']}")
  axes[1].set_ylabel("validation loss")
  return [common.save_figure(fig, out_dir, NAME)]
