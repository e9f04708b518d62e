"""Densely connected networks (Huang, Liu, van der Maaten & Weinberger 2017).

Inside a dense block, layer l sees the concatenation of all earlier outputs:
x_l = H_l([x_0, x_1, ..., x_{l-1}]), each H_l adding `growth_rate` (k) channels. DenseNet-BC uses
bottleneck layers H_l = norm-act-conv1x1(4k)-norm-act-conv3x3(k) and transition layers
norm-act-conv1x1(floor(theta C))-avgpool2x2 with compression theta = 0.5 between blocks.

- DenseNet-BC-100 (CIFAR, k = 12): a 3x3 conv with 2k filters, three blocks of 16 bottleneck
  layers, about 0.8 M parameters.
- DenseNet-121 (ImageNet, k = 32): a 7x7/2 conv with 64 filters and 3x3/2 max pooling, blocks of
  6, 12, 24, 16 layers, about 8.0 M parameters.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models import initializers, layers

Array = jax.Array


class DenseNet(nn.Module):
  """DenseNet-BC.

  Attributes:
    num_classes: outputs of the dense head.
    block_sizes: bottleneck layers per dense block.
    growth_rate: k, channels each layer adds.
    compression: theta, the transition layers' channel factor.
    imagenet_stem: 7x7/2 conv + max pool (else the CIFAR 3x3 conv).
    stem_features: filters of the first conv (None: 2k).
    activation, norm, kernel_init: names (defaults relu, BatchNorm, He normal).
    axis_name: the device axis BatchNorm averages its statistics over.
  """

  HEAD: ClassVar[str] = r"head"  # the output layer(s), as a regex
  num_classes: int
  block_sizes: tuple[int, ...] = (16, 16, 16)
  growth_rate: int = 12
  compression: float = 0.5
  imagenet_stem: bool = False
  stem_features: int | None = None
  activation: str = "relu"
  norm: str = "batch"
  kernel_init: Any = "he_normal"
  axis_name: str | None = None

  def _norm_act_conv(self, x: Array, features: int, kernel: int, train: bool, prefix: str) -> Array:
    x = layers.norm(self.norm, train=train, axis_name=self.axis_name, name=f"{prefix}_norm")(x)
    x = layers.activation(self.activation, name=f"{prefix}_act")(x)
    conv = nn.Conv(
      features,
      (kernel, kernel),
      padding="SAME",
      use_bias=self.norm in ("none", "weight"),
      kernel_init=initializers.get(self.kernel_init),
      name=f"{prefix}_conv",
    )
    return layers.linear_layer(conv, self.norm, name=f"{prefix}_weight_norm")(x)

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    k = self.growth_rate
    kinit = initializers.get(self.kernel_init)
    stem = self.stem_features or 2 * k
    if self.imagenet_stem:
      x = nn.Conv(
        stem, (7, 7), strides=2, padding="SAME", use_bias=False, kernel_init=kinit, name="stem_conv"
      )(x)
      x = layers.norm(self.norm, train=train, axis_name=self.axis_name, name="stem_norm")(x)
      x = layers.activation(self.activation, name="stem_act")(x)
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    else:
      x = nn.Conv(
        stem, (3, 3), padding="SAME", use_bias=False, kernel_init=kinit, name="stem_conv"
      )(x)
    for b, size in enumerate(self.block_sizes):
      for l in range(size):
        y = self._norm_act_conv(x, 4 * k, 1, train, f"block{b + 1}_layer{l + 1}_a")
        y = self._norm_act_conv(y, k, 3, train, f"block{b + 1}_layer{l + 1}_b")
        x = jnp.concatenate([x, y], axis=-1)
      if b + 1 < len(self.block_sizes):
        x = self._norm_act_conv(
          x, int(x.shape[-1] * self.compression), 1, train, f"transition{b + 1}"
        )
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = layers.norm(self.norm, train=train, axis_name=self.axis_name, name="final_norm")(x)
    x = layers.activation(self.activation, name="final_act")(x)
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.num_classes, kernel_init=kinit, name="head")(x)


DenseNetBC100 = functools.partial(DenseNet, block_sizes=(16, 16, 16), growth_rate=12)
DenseNet121 = functools.partial(
  DenseNet, block_sizes=(6, 12, 24, 16), growth_rate=32, imagenet_stem=True, stem_features=64
)
