"""The linear classifier and the multilayer perceptron of the slides.

Both flatten NHWC images to vectors x in R^D first.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax

from research.errors import ConfigError
from research.models import initializers, layers

Array = jax.Array


class Linear(nn.Module):
  """The linear classifier f(x) = W x + b.

  The kernel has shape (D, num_classes); its column c, reshaped to the image shape, is class c's
  "template" of the slides (the score is the inner product of the image with the template).
  """

  HEAD: ClassVar[str] = r"linear"  # the output layer(s), as a regex
  num_classes: int
  kernel_init: Any = "zeros"
  bias_init: Any = "zeros"

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    del train
    x = x.reshape(x.shape[0], -1)
    return nn.Dense(
      self.num_classes,
      kernel_init=initializers.get(self.kernel_init),
      bias_init=initializers.get(self.bias_init),
      name="linear",
    )(x)


class MLP(nn.Module):
  """A fully connected network: `depth` hidden layers of `width` units (or `widths`), then a head.

  Hidden layer i: h = dropout(act(norm(W_i h + b_i))), named 'dense_i', 'norm_i', 'act_i'
  ('maxout_i' when `activation="maxout"`: `num_pieces` linear pieces per unit, max over them).
  `norm="weight"` reparameterizes each hidden kernel as g v / ||v|| (WeightNorm). The head is
  'head'. With depth 0 it is the linear classifier.

  Attributes:
    num_classes: outputs of the head.
    depth, width: number and width of the hidden layers.
    widths: the hidden layers' widths one by one (e.g. (256, 128, 100)); when set it replaces
      `depth` and `width` (the parameter tree is the same: 'dense_0', 'dense_1', ...).
    activation: a name in `layers.ACTIVATIONS` (incl. "maxout", "prelu").
    norm: a name in `layers.NORMS`.
    dropout_rate, dropout_mode: see `layers.Dropout` ("inverted" or "test_time_scaling").
    kernel_init, bias_init: names in `initializers.NAMES` (or initializer functions).
    num_pieces: maxout pieces per unit.
    axis_name: the device axis BatchNorm averages its statistics over.
  """

  HEAD: ClassVar[str] = r"head"  # the output layer(s), as a regex
  num_classes: int
  depth: int = 2
  width: int = 256
  widths: tuple[int, ...] | None = None
  activation: str = "relu"
  norm: str = "none"
  dropout_rate: float = 0.0
  dropout_mode: str = "inverted"
  kernel_init: Any = "he_normal"
  bias_init: Any = "zeros"
  num_pieces: int = 2
  axis_name: str | None = None

  def setup_checks(self) -> None:
    layers.check_activation(self.activation, allow_maxout=True)
    layers.check_norm(self.norm)
    initializers.get(self.kernel_init)
    initializers.get(self.bias_init)
    if self.activation == "maxout" and self.norm != "none":
      raise ConfigError(
        f"norm={self.norm!r} with activation='maxout' is not supported; use norm='none' with maxout"
      )
    if self.widths is not None and not all(isinstance(w, int) and w > 0 for w in self.widths):
      raise ConfigError(f"widths={self.widths!r} must be positive integers, one per hidden layer")
    if self.dropout_mode not in layers.DROPOUT_MODES:
      raise ConfigError(
        f"unknown dropout_mode {self.dropout_mode!r}; choose one of {layers.DROPOUT_MODES}"
      )

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    self.setup_checks()
    kinit, binit = initializers.get(self.kernel_init), initializers.get(self.bias_init)
    h = x.reshape(x.shape[0], -1)
    sizes = (self.width,) * self.depth if self.widths is None else tuple(self.widths)
    for i, width in enumerate(sizes):
      if self.activation == "maxout":
        h = layers.Maxout(
          width, self.num_pieces, kernel_init=kinit, bias_init=binit, name=f"maxout_{i}"
        )(h)
      else:
        dense = nn.Dense(width, kernel_init=kinit, bias_init=binit, name=f"dense_{i}")
        h = layers.linear_layer(dense, self.norm, name=f"weight_norm_{i}")(h)
        if self.norm not in ("none", "weight"):
          h = layers.norm(self.norm, train=train, axis_name=self.axis_name, name=f"norm_{i}")(h)
        h = layers.activation(self.activation, name=f"act_{i}")(h)
      h = layers.Dropout(self.dropout_rate, self.dropout_mode, name=f"dropout_{i}")(h, train=train)
    return nn.Dense(self.num_classes, kernel_init=kinit, bias_init=binit, name="head")(h)
