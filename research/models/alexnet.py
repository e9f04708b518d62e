"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) and a 32x32 variant.

The ImageNet network for 224x224x3 inputs, with the paper's two-GPU split written as 2 feature
groups in conv2, conv4 and conv5 (each group sees half the input channels), so the parameter
count is the paper's split network's: 60,965,224 for 1000 classes.

    layer  output (224 input)   kernel               padding
    conv1  55x55x96             11x11x3, stride 4    2 on each side (as torchvision)
    pool   27x27x96             3x3, stride 2        VALID (overlapping pooling)
    conv2  27x27x256            5x5x48, 2 groups     SAME
    pool   13x13x256
    conv3  13x13x384            3x3x256              SAME
    conv4  13x13x384            3x3x192, 2 groups    SAME
    conv5  13x13x256            3x3x192, 2 groups    SAME
    pool   6x6x256
    fc6 4096 -> dropout -> fc7 4096 -> dropout -> fc8 num_classes

ReLU after every layer but fc8; local response normalization (k=2, n=5, alpha=1e-4,
beta=0.75) after the ReLUs of conv1 and conv2. The paper's initialization: weights N(0, 0.01^2),
biases 1 in conv2, conv4, conv5, fc6 and fc7 and 0 elsewhere.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.errors import ConfigError
from research.models import initializers, layers

Array = jax.Array


def local_response_norm(
  a: Array, k: float = 2.0, n: int = 5, alpha: float = 1e-4, beta: float = 0.75
) -> Array:
  """b_i = a_i / (k + alpha sum_{j=max(0, i-n/2)}^{min(C-1, i+n/2)} a_j^2)^beta over channels.

  As in the paper, alpha multiplies the plain sum (not the mean) of the n neighbours' squares.
  """
  sq = jnp.square(a)
  window_sum = jax.lax.reduce_window(
    sq,
    0.0,
    jax.lax.add,
    (1,) * (a.ndim - 1) + (n,),
    (1,) * a.ndim,
    [(0, 0)] * (a.ndim - 1) + [(n // 2, (n - 1) // 2)],
  )
  return a / jnp.power(k + alpha * window_sum, beta)


class AlexNet(nn.Module):
  """Five convolutions and three dense layers; the defaults are the paper's ImageNet network.

  Attributes:
    num_classes: outputs of fc8.
    conv_features, conv_kernels, conv_groups: per conv layer (5 each).
    conv1_stride, conv1_padding: the first layer's stride and padding.
    pool_after: indices of the conv layers followed by 3x3 stride-2 max pooling.
    fc_features: widths of fc6 and fc7.
    activation: a name in `layers.ACTIVATIONS` (ReLU in the paper; "tanh" for the comparison).
    use_lrn: local response normalization after conv1 and conv2.
    dropout_rate, dropout_mode: dropout on the outputs of fc6 and fc7 (0.5 in the paper).
    kernel_init: weight initializer name (the paper's "normal", N(0, 0.01^2)).
    paper_biases: biases 1 in conv2, conv4, conv5, fc6, fc7 (else all biases 0).
    width: multiplier on every hidden width (1.0 is the paper; small values for tests).
    norm: a name in `layers.NORMS` applied after each conv and hidden dense layer, before the
      activation ("none", the paper, keeps the parameter tree as it was; otherwise those
      layers drop their bias and gain 'norm_conv<i>', 'norm_fc<i>').
    axis_name: the device axis BatchNorm averages its statistics over.
  """

  HEAD: ClassVar[str] = r"fc8"  # the output layer(s), as a regex
  num_classes: int
  conv_features: tuple[int, ...] = (96, 256, 384, 384, 256)
  conv_kernels: tuple[int, ...] = (11, 5, 3, 3, 3)
  conv_groups: tuple[int, ...] = (1, 2, 1, 2, 2)
  conv1_stride: int = 4
  conv1_padding: Any = ((2, 2), (2, 2))
  pool_after: tuple[int, ...] = (0, 1, 4)
  fc_features: tuple[int, ...] = (4096, 4096)
  activation: str = "relu"
  use_lrn: bool = True
  dropout_rate: float = 0.5
  dropout_mode: str = "inverted"
  kernel_init: Any = "normal"
  paper_biases: bool = True
  width: float = 1.0
  norm: str = "none"
  axis_name: str | None = None

  def _w(self, features: int, groups: int = 1) -> int:
    return max(groups, int(round(features * self.width / groups)) * groups)

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    layers.check_norm(self.norm)
    if self.norm == "weight":
      raise ConfigError("norm='weight' is not supported by AlexNet; use none, batch, layer, ...")
    bias = self.norm == "none"
    kinit = initializers.get(self.kernel_init)
    one = nn.initializers.ones if self.paper_biases else nn.initializers.zeros
    for i, (f, k, g) in enumerate(
      zip(self.conv_features, self.conv_kernels, self.conv_groups, strict=True)
    ):
      first = i == 0
      x = nn.Conv(
        self._w(f, g),
        (k, k),
        strides=self.conv1_stride if first else 1,
        padding=self.conv1_padding if first else "SAME",
        feature_group_count=g,
        kernel_init=kinit,
        bias_init=one if i in (1, 3, 4) else nn.initializers.zeros,
        use_bias=bias,
        name=f"conv{i + 1}",
      )(x)
      x = self._norm(x, train, f"norm_conv{i + 1}")
      x = layers.activation(self.activation, name=f"act{i + 1}")(x)
      if self.use_lrn and i < 2:
        x = local_response_norm(x)
      if i in self.pool_after:
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
    x = x.reshape(x.shape[0], -1)
    for j, f in enumerate(self.fc_features):
      x = nn.Dense(self._w(f), kernel_init=kinit, bias_init=one, use_bias=bias, name=f"fc{j + 6}")(
        x
      )
      x = self._norm(x, train, f"norm_fc{j + 6}")
      x = layers.activation(self.activation, name=f"act{j + 6}")(x)
      x = layers.Dropout(self.dropout_rate, self.dropout_mode, name=f"dropout{j + 6}")(
        x, train=train
      )
    return nn.Dense(self.num_classes, kernel_init=kinit, name="fc8")(x)

  def _norm(self, x: Array, train: bool, name: str) -> Array:
    if self.norm == "none":
      return x
    return layers.norm(self.norm, train=train, axis_name=self.axis_name, name=name)(x)


# A 32x32 variant with the same structure: 5x5 stride-1 conv1 (32 -> 15 -> 7 -> 3 after the
# three pools), no feature groups, narrower dense layers, He initialization.
AlexNetCifar = functools.partial(
  AlexNet,
  conv_features=(64, 192, 384, 256, 256),
  conv_kernels=(5, 5, 3, 3, 3),
  conv_groups=(1, 1, 1, 1, 1),
  conv1_stride=1,
  conv1_padding="SAME",
  fc_features=(1024, 1024),
  kernel_init="he_normal",
  paper_biases=False,
)
