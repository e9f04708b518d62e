"""BN, LN, GN and IN across per-device batch sizes (Wu & He 2018, Table 2 and Fig. 1).

Notes 000, normalization section: batch norm estimates each channel's mean and variance from
the examples of one device's batch, so with few examples per device the estimates are noisy and
differ from the running averages used at test time; layer, instance and group norm compute
their statistics inside each example and do not depend on the batch at all. The paper
(ResNet-50 on ImageNet, 8 GPUs): BN's error 23.6 / 23.7 / 24.8 / 27.3 / 34.7% at 32 / 16 / 8 /
4 / 2 images per GPU; GN's 24.1 / 24.2 / 24.0 / 24.2 / 24.1%.

We train a small CNN (four 3x3 convolutions with 32, 32, 64, 64 channels, strides 2, 1, 2, 1,
each followed by the normalization from `research.models.layers` and ReLU, global average
pooling, a dense head) on the full Fashion-MNIST (55,000 training images, standardized) with a
fixed total batch of 32, split into groups of `per-device batch` examples that BN normalizes
separately, exactly as unsynchronized per-device BN does on that many devices
(`research.models.layers.BatchNorm`'s `ghost_batch_size`). Only the statistics' batch changes;
the data, steps and optimizer are the same: the paper's SGD with momentum 0.9 and weight decay
1e-4 at its learning rate 0.1 per 256 images, linearly scaled to the batch of 32 (0.0125).
Measured: the error and loss of the final parameters on the 5,000 validation images held out
of the training split (nothing is chosen, the test split is not used).

GN (8 groups: 4 and 8 channels per group), LN and IN compute per-example statistics, so at a
fixed total batch the network trained at every per-device split is the same computation: each
is trained once and its error holds for every per-device batch. The check that makes this so
is computed, not assumed: in training mode each trained network's outputs for a batch of 32
equal, to float32 round-off, its outputs for the same examples in groups of the smallest
per-device batch (BN's differ; `data['split_difference']`).

Reductions from the paper: a 4-layer CNN instead of ResNet-50 (the first convolution strided),
500 steps (0.29 epoch) instead of 100 epochs, the total batch fixed at 32 (the paper's is 8
GPUs x the per-device batch, with the learning rate scaled to it). Checks: BN's validation
error at 2 examples per device at least 2 points above its error at 32 (paper: +11.1 points),
BN's error highest at the smallest per-device batch, and the per-example normalizations'
independence of the split. The paper's GN below BN at 2 images per GPU (24.1 vs 34.7%) is
recorded (`data['gn_minus_bn_at_smallest']`), not checked: after 0.29 epoch GN trains more
slowly than BN (2026-12-05: GN 28.1% at every split, 3.5 points above BN's 24.6% at 32 and
level with BN's 28.2% at 2), so our numbers do not show it.
"""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import optax

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_greater, check_less
from research import optim
from research.models import initializers, layers

NAME = "norms_vs_batch_size"
TITLE = "Validation error vs per-device batch size for BN, LN, GN and IN (small CNN)"
CAPTION = (
  "A small CNN trained on Fashion-MNIST with a total batch of 32 whose batch-norm statistics "
  "are computed per device on 32, 16, 8, 4 or 2 examples. Batch norm's validation error grows "
  "as the per-device batch shrinks (noisy batch statistics that disagree with the running "
  "averages used at test time); group, layer and instance norm normalize within each example, "
  "so their training is the same at every split (flat lines). After 0.29 epoch GN is not yet "
  "below BN at 2 examples per device, as it is in the paper after 100 epochs (recorded)."
)
PAPER = common.Paper(
  source='Wu & He 2018, "Group Normalization", Table 2 and Fig. 1',
  setup="ResNet-50 on ImageNet, 8 GPUs, 32 down to 2 images per GPU, 100 epochs",
  number=(
    "BN error 23.6 / 23.7 / 24.8 / 27.3 / 34.7% at 32 / 16 / 8 / 4 / 2 images per GPU; GN "
    "24.1 / 24.2 / 24.0 / 24.2 / 24.1%, 10.6 points below BN at 2"
  ),
)

NORMS = {"batch": "BN", "layer": "LN", "group": "GN", "instance": "IN"}
PER_EXAMPLE = ("group", "layer", "instance")  # statistics inside each example


class NormalizedCNN(nn.Module):
  """[conv3x3(c_i, stride s_i) - norm - ReLU] for each i - mean pool - dense.

  (N, H, W, C) -> (N, num_classes). The normalizations are the package's
  (`research.models.layers`); GroupNorm uses `groups` groups of channels; batch norm computes
  its statistics over groups of `per_device` examples.
  """

  norm: str
  num_classes: int = 10
  channels: tuple[int, ...] = (32, 32, 64, 64)
  strides: tuple[int, ...] = (2, 1, 2, 1)
  groups: int = 8
  per_device: int | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for i, (c, stride) in enumerate(zip(self.channels, self.strides, strict=True)):
      x = nn.Conv(
        c,
        (3, 3),
        strides=stride,
        padding="SAME",
        use_bias=False,
        kernel_init=initializers.get("he_normal"),
        name=f"conv_{i}",
      )(x)
      if self.norm == "group":  # the library's 32 groups would be IN on 32 channels
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
  config.dataset = "fashion_mnist_idx"
  config.channels = (32, 32, 64, 64)
  config.strides = (2, 1, 2, 1)
  config.groups = 8
  config.batch_size = 32
  config.per_device = (32, 16, 8, 4, 2)
  config.norms = tuple(NORMS)  # a subset runs faster (the test size)
  config.steps = 500
  config.learning_rate = 0.1 * 32 / 256  # the paper's 0.1 per 256 images
  config.momentum = 0.9
  config.weight_decay = 1e-4
  config.eval_size = 512  # training images evaluated (the curves use only validation)
  config.seed = 0
  return common.sized(
    size,
    config,
    test={
      "dataset": "digits",
      "channels": (16, 32),
      "strides": (1, 2),
      "groups": 4,
      "per_device": (32, 2),
      "norms": ("batch", "group"),
      "steps": 200,
      "learning_rate": 0.05,
    },
    # CIFAR-10 for accelerators: 100 epochs of its 45,000 training images at batch 32
    full={"dataset": "cifar10", "steps": 140_000},
  )


def split_difference(model, variables, x: np.ndarray, per_device: int) -> float:
  """max |f(x)_i - f(x in groups of per_device)_i| of the logits in training mode, `model`'s
  own grouping switched off: zero (to round-off) when each example's output does not depend on
  the rest of its batch, as for GN, LN and IN; not for BN."""
  model = model.clone(per_device=None)

  @jax.jit
  def logits(batch):
    return model.apply(variables, batch, train=True, mutable=["batch_stats"])[0]

  together = np.asarray(logits(x))
  apart = np.concatenate([logits(x[i : i + per_device]) for i in range(0, len(x), per_device)])
  return float(np.abs(together - apart).max())


def run(config: ml_collections.ConfigDict) -> FigureResult:
  name, *splits = _fit.load_data(config.dataset, seed=config.seed)
  train, val = _fit.standardize(*splits[:2])
  unknown = sorted(set(config.norms) - set(NORMS))
  if unknown or "batch" not in config.norms:
    raise ValueError(
      f"config.norms={tuple(config.norms)} must include 'batch' and only names from {tuple(NORMS)}"
    )
  sizes = list(config.per_device)
  parts = [optim.add_l2_penalty(config.weight_decay)] if config.weight_decay else []
  tx = optax.chain(*parts, optim.heavy_ball(config.learning_rate, config.momentum))
  x_probe = train[0][: config.batch_size]

  def net(norm, per_device):
    return NormalizedCNN(
      norm,
      num_classes=int(train[1].max()) + 1,
      channels=tuple(config.channels),
      strides=tuple(config.strides),
      groups=config.groups,
      per_device=per_device,
    )

  def train_one(norm, per_device):
    """Final validation (error, loss) and the split difference of one trained network."""
    model = net(norm, per_device)
    result = _fit.fit_config(
      config, model, tx, train, val, eval_every=config.steps, eval_size=config.eval_size
    )
    diff = split_difference(model, result.variables, x_probe, min(sizes))
    return 1.0 - result.val_accuracy[-1], result.val_loss[-1], diff

  error, loss, diffs = {}, {}, {}
  for norm in config.norms:
    if norm == "batch":
      runs = [train_one(norm, b) for b in sizes]
    else:  # the same computation at every split: trained once (module docstring)
      runs = [train_one(norm, None)] * len(sizes)
    error[norm] = [float(r[0]) for r in runs]
    loss[norm] = [float(r[1]) for r in runs]
    diffs[norm] = runs[0][2]
  big, small = sizes.index(max(sizes)), sizes.index(min(sizes))
  bn = np.asarray(error["batch"])
  checks = [
    check_greater(
      f"BN: validation error at {sizes[small]} examples per device minus at {sizes[big]} "
      "(paper: +11.1 points, 23.6 -> 34.7%)",
      float(bn[small] - bn[big]),
      0.02,
    ),
    check(
      "BN: the per-device batch of its highest validation error (paper: 2, the smallest)",
      sizes[int(np.argmax(bn))],
      sizes[small],
      int(np.argmax(bn)) == small,
    ),
  ]
  for k in (k for k in PER_EXAMPLE if k in config.norms):
    checks.append(
      check_less(
        f"{NORMS[k]}: max |logits of a batch of {config.batch_size} - logits of it in groups "
        f"of {sizes[small]}| in training mode (batch-independent: the same training at every "
        "per-device batch, paper: GN 24.1 +- 0.1%)",
        diffs[k],
        1e-4,
      )
    )
  data = {
    "dataset": name,
    "per_device_batch": sizes,
    "total_batch": config.batch_size,
    "val_error": error,
    "val_loss": loss,
    "split_difference": diffs,
    "per_example_norms_trained_once": [k for k in PER_EXAMPLE if k in config.norms],
  }
  if "group" in config.norms:
    data["gn_minus_bn_at_smallest"] = error["group"][small] - error["batch"][small]
    data["gn_minus_bn_at_largest"] = error["group"][big] - error["batch"][big]
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
