"""Residual networks (He, Zhang, Ren & Sun 2016): the CIFAR family and the ImageNet family.

A residual block computes z = sigma(F(x) + x), F being two (or three) conv-norm layers; the
"plain" networks are the same stacks without the "+ x".

CIFAR (section 4.2 of the paper), depth 6n + 2: a 3x3 conv with 16 filters, then three stages of
n blocks with 16, 32, 64 filters on 32x32, 16x16, 8x8 maps, global average pooling and a dense
layer. When a stage halves the map and doubles the width, the shortcut is option A: subsample by
2 and pad the new channels with zeros (parameter-free), so plain and residual nets have the same
parameters: 0.27 / 0.46 / 0.66 / 0.85 / 1.7 M for depths 20 / 32 / 44 / 56 / 110.

ImageNet (Table 1): a 7x7 stride-2 conv with 64 filters and 3x3 stride-2 max pooling, four stages
(64, 128, 256, 512 filters; basic blocks for 18 / 34 layers, bottleneck blocks with 4x expansion
for 50), projection shortcuts (option B: 1x1 conv + norm) where the shape changes.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.errors import ConfigError
from research.models import initializers, layers

Array = jax.Array


class ConvNorm(nn.Module):
  """conv -> norm, the unit every block is built from (bias only when there is no norm)."""

  features: int
  kernel: int = 3
  strides: int = 1
  norm: str = "batch"
  axis_name: str | None = None
  kernel_init: Any = "he_normal"

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    conv = nn.Conv(
      self.features,
      (self.kernel, self.kernel),
      strides=self.strides,
      padding="SAME",
      use_bias=self.norm in ("none", "weight"),
      kernel_init=initializers.get(self.kernel_init),
      name="conv",
    )
    x = layers.linear_layer(conv, self.norm, name="weight_norm")(x)
    return layers.norm(self.norm, train=train, axis_name=self.axis_name, name="norm")(x)


def _shortcut_a(x: Array, features: int, strides: int) -> Array:
  """Option A: subsample by `strides` and zero-pad the channels up to `features`."""
  if strides > 1:
    x = x[:, ::strides, ::strides, :]
  extra = features - x.shape[-1]
  if extra > 0:
    x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
  return x


class BasicBlock(nn.Module):
  """Two 3x3 conv-norm layers: z = act(F(x) + shortcut(x)) (or act(F(x)) without shortcut)."""

  features: int
  strides: int = 1
  shortcut: str = "a"  # "a" (zero padding), "b" (projection where needed) or "none"
  activation: str = "relu"
  norm: str = "batch"
  axis_name: str | None = None
  kernel_init: Any = "he_normal"

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    cn = functools.partial(
      ConvNorm, norm=self.norm, axis_name=self.axis_name, kernel_init=self.kernel_init
    )
    y = cn(self.features, 3, self.strides, name="conv_norm1")(x, train)
    y = layers.activation(self.activation, name="act1")(y)
    y = cn(self.features, 3, 1, name="conv_norm2")(y, train)
    if self.shortcut == "a":
      y = y + _shortcut_a(x, self.features, self.strides)
    elif self.shortcut == "b":
      changed = self.strides > 1 or x.shape[-1] != self.features
      y = y + (cn(self.features, 1, self.strides, name="projection")(x, train) if changed else x)
    return layers.activation(self.activation, name="act2")(y)


class BottleneckBlock(nn.Module):
  """1x1 (reduce) -> 3x3 -> 1x1 (expand 4x) conv-norm layers, projection shortcut (option B)."""

  features: int
  strides: int = 1
  shortcut: str = "b"
  activation: str = "relu"
  norm: str = "batch"
  axis_name: str | None = None
  kernel_init: Any = "he_normal"

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    cn = functools.partial(
      ConvNorm, norm=self.norm, axis_name=self.axis_name, kernel_init=self.kernel_init
    )
    y = layers.activation(self.activation, name="act1")(
      cn(self.features, 1, 1, name="conv_norm1")(x, train)
    )
    y = layers.activation(self.activation, name="act2")(
      cn(self.features, 3, self.strides, name="conv_norm2")(y, train)
    )
    y = cn(4 * self.features, 1, 1, name="conv_norm3")(y, train)
    if self.shortcut != "none":
      changed = self.strides > 1 or x.shape[-1] != 4 * self.features
      y = y + (
        cn(4 * self.features, 1, self.strides, name="projection")(x, train) if changed else x
      )
    return layers.activation(self.activation, name="act3")(y)


class CifarResNet(nn.Module):
  """The 6n+2-layer CIFAR ResNet (or plain net with `shortcut=False`).

  Attributes:
    num_classes: outputs of the dense head.
    depth: 6n + 2 (20, 32, 44, 56, 110).
    shortcut: identity / option-A shortcuts (False gives the plain network).
    widths: filters of the three stages.
    activation, norm, kernel_init: names (defaults: relu, BatchNorm, He normal).
    axis_name: the device axis BatchNorm averages its statistics over.
  """

  HEAD: ClassVar[str] = r"head"  # the output layer(s), as a regex
  num_classes: int
  depth: int = 20
  shortcut: bool = True
  widths: tuple[int, ...] = (16, 32, 64)
  activation: str = "relu"
  norm: str = "batch"
  kernel_init: Any = "he_normal"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    if (self.depth - 2) % 6:
      raise ConfigError(f"depth={self.depth} is not 6n+2; use 20, 32, 44, 56 or 110")
    n = (self.depth - 2) // 6
    x = ConvNorm(self.widths[0], 3, 1, self.norm, self.axis_name, self.kernel_init, name="stem")(
      x, train
    )
    x = layers.activation(self.activation, name="stem_act")(x)
    for s, f in enumerate(self.widths):
      for b in range(n):
        x = BasicBlock(
          f,
          2 if (s > 0 and b == 0) else 1,
          "a" if self.shortcut else "none",
          self.activation,
          self.norm,
          self.axis_name,
          self.kernel_init,
          name=f"stage{s + 1}_block{b + 1}",
        )(x, train)
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.num_classes, kernel_init=initializers.get(self.kernel_init), name="head")(
      x
    )


class ResNet(nn.Module):
  """The ImageNet ResNet: 7x7/2 stem, max pool, four stages, global pooling, dense head.

  Attributes:
    num_classes: outputs of the dense head.
    stage_sizes: blocks per stage ((2, 2, 2, 2) for 18 layers).
    bottleneck: bottleneck blocks (50 layers and deeper) instead of basic blocks.
    width: filters of the first stage (doubling each stage).
    activation, norm, kernel_init, axis_name: as in `CifarResNet`.
  """

  HEAD: ClassVar[str] = r"head"  # the output layer(s), as a regex
  num_classes: int
  stage_sizes: tuple[int, ...] = (2, 2, 2, 2)
  bottleneck: bool = False
  width: int = 64
  activation: str = "relu"
  norm: str = "batch"
  kernel_init: Any = "he_normal"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    x = ConvNorm(self.width, 7, 2, self.norm, self.axis_name, self.kernel_init, name="stem")(
      x, train
    )
    x = layers.activation(self.activation, name="stem_act")(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    block = BottleneckBlock if self.bottleneck else BasicBlock
    for s, size in enumerate(self.stage_sizes):
      for b in range(size):
        x = block(
          self.width * 2**s,
          2 if (s > 0 and b == 0) else 1,
          "b",
          self.activation,
          self.norm,
          self.axis_name,
          self.kernel_init,
          name=f"stage{s + 1}_block{b + 1}",
        )(x, train)
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.num_classes, kernel_init=initializers.get(self.kernel_init), name="head")(
      x
    )


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2))
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3))
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), bottleneck=True)
