"""VGG-16 and the fully convolutional networks FCN-32s/16s/8s (Long, Shelhamer & Darrell 2015).

The backbone is VGG-16's thirteen 3x3 convolutions in five blocks (64, 64 | 128, 128 |
256 x 3 | 512 x 3 | 512 x 3 filters), each block ending in 2x2 max pooling, so pool3, pool4 and
pool5 have strides 8, 16 and 32. Both the classifier `VGG16` and the `FCN` keep it under the
name 'backbone' (parameters 'backbone/conv{block}_{i}'), so its weights move between them by path.

The FCN turns VGG's dense layers into convolutions (fc6: 7x7 conv with 4096 filters, fc7: 1x1
conv with 4096, score_fr: 1x1 conv with num_classes) and upsamples the stride-32 class scores
with transposed convolutions initialized to bilinear interpolation:
- fcn32s: upsample x32.
- fcn16s: upsample x2, add a 1x1 score of pool4 (zero-initialized), upsample x16.
- fcn8s: as fcn16s, then upsample x2 again, add a score of pool3, upsample x8.
Output: (N, H, W, num_classes) for H, W divisible by 32.

`VGG16` keeps fc6 / fc7 as the equivalent convolutions, so a trained classifier's backbone,
fc6 and fc7 load into an FCN by parameter path (with `fc6_kernel` equal to the classifier's
pool5 size); `transfer_backbone` does that copy with shape checks.
"""

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from research.errors import ConfigError
from research.models import initializers, layers

Array = jax.Array

VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def bilinear_kernel(factor: int) -> np.ndarray:
  """The (k, k) bilinear interpolation filter for upsampling by `factor`, k = 2f - f mod 2.

  w[i, j] = (1 - |i - c| / f)(1 - |j - c| / f), with centre c = f - 1 (k odd) or f - 1/2.
  """
  size = 2 * factor - factor % 2
  center = factor - 1 if size % 2 == 1 else factor - 0.5
  og = np.arange(size)
  w1 = 1 - np.abs(og - center) / factor
  return np.outer(w1, w1).astype(np.float32)


def _phase_taps(factor: int, size: int, lo: int) -> tuple[np.ndarray, np.ndarray]:
  """Kernel rows used by each output phase of a stride-`factor` transposed convolution.

  Output o = f q + r reads input q + d, d in {-1, 0, 1}, with kernel row u = f d + lo - r
  (zero where u falls outside [0, size)). Returns (rows (3, f) clipped, valid mask (3, f)).
  """
  d = np.arange(-1, 2)[:, None]
  r = np.arange(factor)[None, :]
  rows = factor * d + lo - r
  valid = (rows >= 0) & (rows < size)
  return np.clip(rows, 0, size - 1), valid


def transposed_conv(
  x: Array, kernel: Array, factor: int, padding: tuple[int, int], depthwise: bool
) -> Array:
  """A stride-`factor` transposed convolution computed phase by phase (sub-pixel form).

  Equal to `lax.conv_general_dilated(x, kernel, (1, 1), (padding, padding),
  lhs_dilation=(f, f))` (the correlation of the input dilated by f with `kernel`), without
  multiplying the f^2 - 1 zeros of each dilated pixel: output pixel f q + r is
  y[f q + r] = sum_{d in {-1, 0, 1}} x[q + d] K[f d + lo - r], so one 3 x 3 convolution of the
  zero-padded input with f^2 gathered sub-kernels, then a depth-to-space reshuffle, gives all
  phases. Needs lo <= k - 1 and lo + hi = k + f - 2 (output exactly f H x f W), which
  `BilinearUpsample`'s padding (k - 1 - p, f - 1 + p) satisfies.

  Args:
    x: (N, H, W, C) input.
    kernel: (k, k, 1, C) when `depthwise`, else (k, k, C, O).
    factor: the stride f.
    padding: (lo, hi) of the dilated correlation, the same on both spatial axes.
    depthwise: one filter per channel (feature_group_count = C).

  Returns:
    (N, f H, f W, C or O).
  """
  n, h, w, c = x.shape
  k = kernel.shape[0]
  lo, hi = padding
  if lo > k - 1 or lo + hi != k + factor - 2:
    raise ValueError(
      f"transposed_conv: padding {padding} with kernel size {k} and factor "
      f"{factor} does not give an f H x f W output; use (lo, {k + factor - 2} - lo) "
      f"with lo <= {k - 1}"
    )
  rows, valid = _phase_taps(factor, k, lo)
  # sub[dh, rh, dw, rw, i, o] = K[rows[dh, rh], rows[dw, rw], i, o], zero where invalid
  sub = kernel[rows[:, :, None, None], rows[None, None, :, :]]
  mask = (valid[:, :, None, None] & valid[None, None, :, :]).astype(kernel.dtype)
  sub = sub * mask[..., None, None]
  out_c = kernel.shape[-1]
  if depthwise:  # (dh, dw, 1, C, rh, rw): group c owns output channels c f^2 ... c f^2 + f^2 - 1
    sub = sub.transpose(0, 2, 4, 5, 1, 3).reshape(3, 3, 1, out_c * factor * factor)
  else:  # (dh, dw, I, rh, rw, O)
    sub = sub.transpose(0, 2, 4, 1, 3, 5).reshape(3, 3, c, factor * factor * out_c)
  y = jax.lax.conv_general_dilated(
    x,
    sub.astype(x.dtype),
    window_strides=(1, 1),
    padding=((1, 1), (1, 1)),
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    feature_group_count=c if depthwise else 1,
  )
  if depthwise:
    y = y.reshape(n, h, w, out_c, factor, factor).transpose(0, 1, 4, 2, 5, 3)
  else:
    y = y.reshape(n, h, w, factor, factor, out_c).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, h * factor, w * factor, out_c)


class BilinearUpsample(nn.Module):
  """A stride-`factor` transposed convolution initialized to bilinear upsampling.

  Output (N, f H, f W, C) for input (N, H, W, C). Defined as a correlation of the input dilated
  by f (zeros between pixels) with a k x k kernel, k = 2f - f mod 2, padded by
  (k - 1 - p, f - 1 + p) with p = (k - f) / 2: output pixel o sits at input coordinate
  (o + 1/2) / f - 1/2, the half-pixel convention of `jax.image.resize(..., "bilinear")`, which it
  reproduces away from the borders at initialization. Computed by `transposed_conv` (phase by
  phase, about k^2 / 9 times fewer multiplications than the dilated correlation: 455x for
  FCN-32s' 64 x 64 kernel).

  With `per_class` each channel has its own k x k filter (kernel (k, k, 1, C), depthwise);
  otherwise a full (k, k, C, C) kernel, bilinear on the diagonal and zero elsewhere.
  """

  factor: int
  per_class: bool = True
  trainable: bool = True

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c = x.shape[-1]
    w = bilinear_kernel(self.factor)
    k = w.shape[0]
    if self.per_class:
      init_value = np.tile(w[:, :, None, None], (1, 1, 1, c))
    else:
      init_value = w[:, :, None, None] * np.eye(c, dtype=np.float32)[None, None]
    kernel = self.param("kernel", lambda _key, shape: jnp.asarray(init_value), init_value.shape)
    if not self.trainable:
      kernel = jax.lax.stop_gradient(kernel)
    p = (k - self.factor) // 2
    return transposed_conv(
      x, kernel, self.factor, (k - 1 - p, self.factor - 1 + p), depthwise=self.per_class
    )


class VGGBackbone(nn.Module):
  """VGG-16's convolutions; returns {'pool1', ..., 'pool5'} feature maps (strides 2 .. 32)."""

  width: float = 1.0
  activation: str = "relu"
  norm: str = "none"
  kernel_init: Any = "he_normal"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> dict[str, Array]:
    kinit = initializers.get(self.kernel_init)
    out = {}
    for b, block in enumerate(VGG16_BLOCKS):
      for i, f in enumerate(block):
        tag = f"{b + 1}_{i + 1}"
        conv = nn.Conv(
          max(1, int(round(f * self.width))),
          (3, 3),
          padding="SAME",
          use_bias=self.norm in ("none", "weight"),
          kernel_init=kinit,
          name=f"conv{tag}",
        )
        x = layers.linear_layer(conv, self.norm, name=f"weight_norm{tag}")(x)
        if self.norm not in ("none", "weight"):
          x = layers.norm(self.norm, train=train, axis_name=self.axis_name, name=f"norm{tag}")(x)
        x = layers.activation(self.activation, name=f"act{tag}")(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
      out[f"pool{b + 1}"] = x
    return out


def _fc6_fc7(
  x: Array,
  width: float,
  fc6_kernel: tuple[int, int],
  padding: str,
  activation: str,
  dropout_rate: float,
  kernel_init,
  train: bool,
) -> Array:
  """fc6 (a `fc6_kernel` conv) and fc7 (1x1), 4096 x width filters each, activation, dropout.

  Called inside `VGG16` and `FCN`, so both hold the parameters under the same paths ('fc6',
  'fc7') and shapes, which is what lets a classifier's fc layers load into the FCN.
  """
  features = max(1, int(round(4096 * width)))
  for name, kernel in (("fc6", fc6_kernel), ("fc7", (1, 1))):
    x = nn.Conv(features, kernel, padding=padding, kernel_init=kernel_init, name=name)(x)
    x = layers.activation(activation, name=f"{name}_act")(x)
    x = layers.Dropout(dropout_rate, name=f"{name}_dropout")(x, train=train)
  return x


class VGG16(nn.Module):
  """The VGG-16 classifier: backbone, fc6 (4096), fc7 (4096), fc8 (num_classes), dropout 0.5.

  fc6 and fc7 are written as the convolutions they are equivalent to: fc6 is a VALID conv whose
  kernel covers the whole pool5 map (7x7x512 for 224x224 inputs, 4x4 for 128x128, 1x1 for
  32x32), fc7 a 1x1 conv. The parameters are those of the dense layers (the kernel is the dense
  kernel reshaped to (h, w, c, 4096)), and they have the same shapes and paths as the FCN's
  fc6 / fc7 when the FCN's `fc6_kernel` equals the pool5 size, so fine-tuning by path works.
  """

  HEAD: ClassVar[str] = r"fc8"  # the output layer(s), as a regex
  num_classes: int
  width: float = 1.0
  activation: str = "relu"
  norm: str = "none"
  kernel_init: Any = "he_normal"
  dropout_rate: float = 0.5
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    kinit = initializers.get(self.kernel_init)
    x = VGGBackbone(
      self.width, self.activation, self.norm, self.kernel_init, self.axis_name, name="backbone"
    )(x, train)["pool5"]
    x = _fc6_fc7(
      x, self.width, x.shape[1:3], "VALID", self.activation, self.dropout_rate, kinit, train
    )
    return nn.Dense(self.num_classes, kernel_init=kinit, name="fc8")(x.reshape(x.shape[0], -1))


class FCN(nn.Module):
  """FCN-32s / 16s / 8s on the VGG-16 backbone.

  Attributes:
    num_classes: classes per pixel (21 for PASCAL VOC).
    skips: () for fcn32s, ("pool4",) for fcn16s, ("pool4", "pool3") for fcn8s.
    width: multiplier on every backbone and fc width (1.0 is VGG-16; small for tests).
    fc6_kernel: spatial size of the convolutionalized fc6 (7 as in VGG-16 on 224x224; 1 to take
      fc6 from a classifier trained on 32x32 images).
    per_class_upsampling: depthwise bilinear transposed convolutions (else full C x C kernels).
    activation, norm, kernel_init, dropout_rate, axis_name: as in `VGG16`.
  """

  HEAD: ClassVar[str] = r"(up)?score\w*"  # the score and learned-upsampling layers
  num_classes: int
  skips: tuple[str, ...] = ()
  width: float = 1.0
  fc6_kernel: int = 7
  per_class_upsampling: bool = True
  activation: str = "relu"
  norm: str = "none"
  kernel_init: Any = "he_normal"
  dropout_rate: float = 0.5
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    h, w = x.shape[1:3]
    if h % 32 or w % 32:
      raise ConfigError(
        f"FCN input {h}x{w} is not divisible by 32; crop or pad to a multiple of 32"
      )
    kinit = initializers.get(self.kernel_init)
    feats = VGGBackbone(
      self.width, self.activation, self.norm, self.kernel_init, self.axis_name, name="backbone"
    )(x, train)
    y = _fc6_fc7(
      feats["pool5"],
      self.width,
      (self.fc6_kernel, self.fc6_kernel),
      "SAME",
      self.activation,
      self.dropout_rate,
      kinit,
      train,
    )
    y = nn.Conv(self.num_classes, (1, 1), kernel_init=kinit, name="score_fr")(y)
    stride = 32
    for skip in self.skips:
      y = BilinearUpsample(2, self.per_class_upsampling, name=f"upscore_to_{skip}")(y)
      y = y + nn.Conv(
        self.num_classes, (1, 1), kernel_init=nn.initializers.zeros, name=f"score_{skip}"
      )(feats[skip])
      stride //= 2
    return BilinearUpsample(stride, self.per_class_upsampling, name="upscore")(y)


def transfer_backbone(
  fcn_variables: dict, classifier_variables: dict, *, include_fc: bool = True
) -> dict:
  """Copies a `VGG16` classifier's backbone (and fc6, fc7) into an FCN's variables.

  Every leaf under 'backbone' (params and batch_stats) is copied, and with `include_fc` also
  fc6 and fc7 (the classifier keeps them as convolutions, so only the FCN's `fc6_kernel` has to
  equal the classifier's pool5 size). The FCN's score layers and upsampling stay as they are.
  A plain path-by-path merge of the two trees does the same; this function checks every shape.

  Args:
    fcn_variables: `FCN.init(...)` output (or any FCN variables).
    classifier_variables: `VGG16` variables with the same width and norm.
    include_fc: also copy fc6 / fc7.

  Returns:
    New FCN variables (the inputs are not modified).

  Raises:
    ValueError: naming the first path whose shapes do not fit.
  """
  out = {k: dict(v) for k, v in fcn_variables.items()}
  for collection, tree in classifier_variables.items():
    names = [n for n in ("backbone", "fc6", "fc7") if n in tree and (include_fc or n == "backbone")]
    if names and (collection not in out or "backbone" not in out[collection]):
      raise ValueError(
        f"the FCN variables have no '{collection}/backbone'; build the FCN with "
        "the classifier's norm"
      )
    for name in names:
      src = dict(jax.tree_util.tree_flatten_with_path(tree[name])[0])
      dst = dict(jax.tree_util.tree_flatten_with_path(out[collection][name])[0])
      for path, leaf in dst.items():
        if path not in src or src[path].shape != leaf.shape:
          got = src[path].shape if path in src else "nothing"
          hint = (
            "set the FCN's fc6_kernel to the classifier's pool5 size or pass include_fc=False"
            if name == "fc6"
            else "use the same width and norm"
          )
          raise ValueError(
            f"{collection}/{name}{jax.tree_util.keystr(path)}: the FCN needs "
            f"{leaf.shape}, the classifier has {got}; {hint}"
          )
      out[collection][name] = jax.tree.map(jnp.asarray, tree[name])
  return out
