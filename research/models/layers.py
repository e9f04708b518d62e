"""The lecture's layers: activations (incl. PReLU, Maxout), normalizations, dropout variants.

Everything a model chooses by name goes through `activation(name)`, `norm(name, ...)` and
`initializers.get(name)`, so configs can name them and a bad name fails at once with the list
of choices.
"""

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.errors import ConfigError
from research.models import initializers

Array = jax.Array

# ----------------------------------------------------------------------------- activations

_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
  "identity": lambda x: x,
  "sigmoid": jax.nn.sigmoid,
  "tanh": jnp.tanh,
  "relu": jax.nn.relu,
  "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.01),
  "leaky_relu_0.01": lambda x: jax.nn.leaky_relu(x, 0.01),
  "leaky_relu_0.1": lambda x: jax.nn.leaky_relu(x, 0.1),
  "elu": jax.nn.elu,
}
# Learned activations: "prelu" is a module with a slope parameter; "maxout" replaces the
# preceding linear layer (k pieces per unit), so only models built from `Maxout` accept it.
ACTIVATIONS = (*_ACTIVATIONS, "prelu", "maxout")


class PReLU(nn.Module):
  """Parametric ReLU: f(x) = max(0, x) + a min(0, x), with the slope `a` learned.

  He et al. (2015) initialize a = 0.25; `per_channel` learns one slope per feature.
  """

  init_slope: float = 0.25
  per_channel: bool = False

  @nn.compact
  def __call__(self, x: Array) -> Array:
    shape = (x.shape[-1],) if self.per_channel else ()
    a = self.param("slope", nn.initializers.constant(self.init_slope), shape, jnp.float32)
    return jnp.where(x >= 0, x, a.astype(x.dtype) * x)


class Activation(nn.Module):
  """The elementwise activation `kind` as a module, so `capture_intermediates` records its output.

  Kinds: sigmoid, tanh, relu, leaky_relu (slope 0.01), leaky_relu_0.1, prelu (learned slope,
  parameter 'slope'), elu, identity.
  """

  kind: str = "relu"

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if self.kind == "prelu":
      return PReLU(name="prelu")(x)
    check_activation(self.kind)
    return _ACTIVATIONS[self.kind](x)


def activation(kind: str, name: str | None = None) -> Activation:
  """The activation called `kind` as a submodule; call it inside a `@nn.compact` method."""
  check_activation(kind)
  return Activation(kind=kind, name=name)


def check_activation(name: str, *, allow_maxout: bool = False) -> None:
  """Raises ConfigError for an unknown activation name (call it at model construction)."""
  if name == "maxout" and not allow_maxout:
    raise ConfigError(
      "activation 'maxout' replaces the linear layer before it and is available "
      "only in 'mlp'; choose another activation for this model"
    )
  if name not in ACTIVATIONS:
    choices = ACTIVATIONS if allow_maxout else tuple(a for a in ACTIVATIONS if a != "maxout")
    raise ConfigError(
      f"unknown activation {name!r} for this model; choose one of {', '.join(choices)}"
    )


def maxout(z: Array, num_pieces: int) -> Array:
  """Maxout over groups of `num_pieces` consecutive features: (..., F * k) -> (..., F).

  h_j = max_{i < k} z_{j k + i}: each output unit is the largest of its k linear pieces.
  """
  if z.shape[-1] % num_pieces:
    raise ValueError(
      f"maxout: {z.shape[-1]} features do not split into pieces of "
      f"{num_pieces}; use a multiple of {num_pieces}"
    )
  z = z.reshape(*z.shape[:-1], z.shape[-1] // num_pieces, num_pieces)
  return z.max(axis=-1)


class Maxout(nn.Module):
  """A maxout layer (Goodfellow et al. 2013): h_j(x) = max_i (w_{ji}^T x + b_{ji}).

  `features` output units, each with `num_pieces` linear pieces. ReLU is the special case of two
  pieces where one piece has w = 0, b = 0. The kernel has shape (in, features * num_pieces) with
  the pieces of unit j in columns j k, ..., j k + k - 1.
  """

  features: int
  num_pieces: int = 2
  kernel_init: Any = "xavier_uniform"
  bias_init: Any = "zeros"

  @nn.compact
  def __call__(self, x: Array) -> Array:
    z = nn.Dense(
      self.features * self.num_pieces,
      kernel_init=initializers.get(self.kernel_init),
      bias_init=initializers.get(self.bias_init),
      name="linear",
    )(x)
    return maxout(z, self.num_pieces)


# ----------------------------------------------------------------------------- dropout

DROPOUT_MODES = ("inverted", "test_time_scaling")


class Dropout(nn.Module):
  """Dropout with drop probability `rate` (keep probability alpha = 1 - rate).

  mask_i ~ Bernoulli(alpha) at training time. Two equivalent-in-expectation conventions:

  - "inverted" (default, as in Flax/PyTorch): training y = mask * x / alpha, evaluation y = x.
  - "test_time_scaling" (the lecture and the AlexNet paper): training y = mask * x, evaluation
    y = alpha * x, since E[mask * x] = alpha x.

  Training draws from the 'dropout' RNG stream.
  """

  rate: float
  mode: str = "inverted"

  @nn.compact
  def __call__(self, x: Array, *, train: bool) -> Array:
    if self.mode not in DROPOUT_MODES:
      raise ConfigError(f"unknown dropout mode {self.mode!r}; choose one of {DROPOUT_MODES}")
    if not 0.0 <= self.rate < 1.0:
      raise ConfigError(f"dropout rate={self.rate} must lie in [0, 1)")
    keep = 1.0 - self.rate
    if self.rate == 0.0:
      return x
    if not train:
      return x if self.mode == "inverted" else x * keep
    mask = jax.random.bernoulli(self.make_rng("dropout"), keep, x.shape)
    y = jnp.where(mask, x, jnp.zeros_like(x))
    return y / keep if self.mode == "inverted" else y


# ----------------------------------------------------------------------------- batch norm


class BatchNorm(nn.Module):
  """Batch normalization (Ioffe & Szegedy 2015) over all axes but the last.

  Training, for each feature over the B values of the batch (B = N * H * W for images, summed
  over devices when `axis_name` is set):
    mu_B = (1/B) sum_i z_i,  sigma_B^2 = (1/B) sum_i (z_i - mu_B)^2,
    y_i = gamma (z_i - mu_B) / sqrt(sigma_B^2 + eps) + beta,
  and the running estimates used at evaluation are updated with the batch's statistics:
    mean <- m mean + (1 - m) mu_B,  var <- m var + (1 - m) c sigma_B^2,
  where c = B / (B - 1) when `unbiased_variance` (the lecture's unbiased estimate), else 1.
  With `momentum=None` the estimates are the plain average over all batches seen, as in the
  lecture: mean = (1/N_batch) sum mu_B, var = (1/N_batch) sum c sigma_B^2.

  Evaluation (`use_running_average=True`) normalizes with the running estimates instead.
  Under `pmap`/`shard_map` with `axis_name`, mu_B and sigma_B^2 are averaged across devices
  (two-pass: the mean first, then the mean squared deviation from it), so each device
  normalizes with the statistics of the whole global batch.

  `ghost_batch_size` (Hoffer et al. 2017, "ghost batch norm") instead splits the batch into
  groups of that many examples, each normalized with its own statistics, as unsynchronized
  per-device BN does with that many examples per device; the running estimates move by the
  mean of the groups' statistics (each with its own B / (B - 1)). It must divide the batch.

  Variables: params 'scale' (gamma), 'bias' (beta); batch_stats 'mean', 'var' (and 'count'
  with `momentum=None`).
  """

  use_running_average: bool | None = None
  momentum: float | None = 0.9
  epsilon: float = 1e-5
  unbiased_variance: bool = True
  axis_name: str | None = None
  ghost_batch_size: int | None = None
  use_scale: bool = True
  use_bias: bool = True
  scale_init: Any = nn.initializers.ones
  bias_init: Any = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: Array, use_running_average: bool | None = None) -> Array:
    use_ra = nn.merge_param("use_running_average", self.use_running_average, use_running_average)
    features = x.shape[-1]
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
    count = (
      self.variable("batch_stats", "count", jnp.zeros, (), jnp.float32)
      if self.momentum is None
      else None
    )

    ghost = self.ghost_batch_size
    if ghost is not None and not use_ra and x.shape[0] % ghost:
      raise ConfigError(f"ghost_batch_size={ghost} does not divide the batch of {x.shape[0]}")
    groups = 1 if ghost is None or use_ra else x.shape[0] // ghost
    if use_ra:
      y = (x.astype(jnp.float32) - ra_mean.value) * jax.lax.rsqrt(ra_var.value + self.epsilon)
    else:
      xf = x.astype(jnp.float32).reshape(groups, -1, *x.shape[1:])  # (G, B / G, ..., F)
      axes = tuple(range(1, xf.ndim - 1))
      n = math.prod(xf.shape[1:-1])
      sync = self.axis_name is not None and not self.is_initializing()
      mean = xf.mean(axis=axes, keepdims=True)
      if sync:
        mean = jax.lax.pmean(mean, self.axis_name)
        n = n * jax.lax.psum(1, self.axis_name)
      var = jnp.square(xf - mean).mean(axis=axes, keepdims=True)
      if sync:
        var = jax.lax.pmean(var, self.axis_name)
      if not self.is_initializing():
        correction = n / jnp.maximum(n - 1, 1) if self.unbiased_variance else 1.0
        if self.momentum is None:
          count.value = count.value + 1.0
          w = 1.0 / count.value
        else:
          w = 1.0 - self.momentum
        batch_mean = mean.reshape(groups, features).mean(0)
        batch_var = var.reshape(groups, features).mean(0)
        ra_mean.value = ra_mean.value + w * (batch_mean - ra_mean.value)
        ra_var.value = ra_var.value + w * (correction * batch_var - ra_var.value)
      y = ((xf - mean) * jax.lax.rsqrt(var + self.epsilon)).reshape(x.shape)
    if self.use_scale:
      y = y * self.param("scale", self.scale_init, (features,), jnp.float32)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (features,), jnp.float32)
    return y.astype(x.dtype)


# ----------------------------------------------------------------------------- norm factory

NORMS = ("none", "batch", "batch_biased", "layer", "group", "instance", "weight")


def check_norm(name: str) -> None:
  """Raises ConfigError for an unknown normalization name."""
  if name not in NORMS:
    raise ConfigError(f"unknown norm {name!r}; choose one of {', '.join(NORMS)}")


class GroupNorm(nn.Module):
  """GroupNorm (Wu & He 2018) with gcd(num_groups, channels) groups, so any width works."""

  num_groups: int = 32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    return nn.GroupNorm(num_groups=math.gcd(self.num_groups, x.shape[-1]), epsilon=1e-5)(x)


def norm(
  kind: str,
  *,
  train: bool,
  axis_name: str | None = None,
  scale_init: Any = nn.initializers.ones,
  name: str | None = None,
  ghost_batch_size: int | None = None,
) -> Callable[[Array], Array]:
  """The activation normalization called `kind`, applied after a linear/conv layer.

  - "batch": `BatchNorm` (batch statistics when `train`, running estimates otherwise, the
    unbiased B/(B-1) running variance, synced over `axis_name`, or per group of
    `ghost_batch_size` examples); "batch_biased": the same with the biased running variance
    (Flax's default).
  - "layer": LayerNorm over the features of each example (Ba et al. 2016).
  - "group": GroupNorm with 32 groups (fewer when the width is not a multiple of 32).
  - "instance": InstanceNorm, per example and channel over the spatial axes (Ulyanov et al.).
  - "none" and "weight": identity here; "weight" reparameterizes the preceding layer's kernel
    instead (see `linear_layer`).

  Call inside a module's `@nn.compact` method. `scale_init` initializes gamma (zeros for the
  last BN of a residual branch, when a model asks for it).
  """
  check_norm(kind)
  if kind in ("none", "weight"):
    return lambda x: x
  if kind in ("batch", "batch_biased"):
    return BatchNorm(
      use_running_average=not train,
      axis_name=axis_name,
      unbiased_variance=kind == "batch",
      scale_init=scale_init,
      name=name,
      ghost_batch_size=ghost_batch_size,
    )
  if kind == "layer":
    return nn.LayerNorm(epsilon=1e-5, scale_init=scale_init, name=name)
  if kind == "group":
    return GroupNorm(name=name)
  return nn.InstanceNorm(epsilon=1e-5, scale_init=scale_init, name=name)


def linear_layer(layer: nn.Module, norm_name: str, name: str | None = None) -> nn.Module:
  """Wraps a Dense/Conv in WeightNorm (Salimans & Kingma 2016) when `norm_name == "weight"`.

  WeightNorm writes each output unit's weight vector as w = g v / ||v||, learning g and v.
  """
  return nn.WeightNorm(layer, name=name) if norm_name == "weight" else layer
