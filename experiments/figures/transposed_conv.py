"""Transposed convolution: the lecture's 2x2 -> 4x4 picture and bilinear upsampling.

Notes 000, section 4.3: a transposed ("de-") convolution enlarges its input; a 2x2 input with a
3x3 kernel gives a 4x4 output, each input pixel x_ij adding a copy of the kernel scaled by x_ij
at offset (i, j):

    y[i + a, j + b] += x[i, j] K[a, b].

It is the transpose (adjoint) of a convolution: for stride f its adjoint is the stride-f
convolution with the same kernel. FCN (Long et al. 2015) initializes its stride-f transposed
convolutions with the bilinear kernel w[i] = 1 - |i - c| / f, so at initialization they reproduce
bilinear upsampling. We check, with `research.models.fcn.BilinearUpsample` (the FCN's layer) and
Flax's `nn.ConvTranspose`:

  * the 2x2 -> 4x4 picture equals the scatter-add above exactly;
  * the bilinear transposed convolution equals `jax.image.resize(..., "bilinear")` on real
    images away from the borders (at the borders resize renormalizes, the convolution sees zeros);
  * its adjoint (`jax.linear_transpose`) is the stride-f convolution with the same kernel.
"""

from __future__ import annotations

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments.figures import _fit, common
from experiments.figures.common import FigureResult, check, check_greater, check_less
from research.models.fcn import BilinearUpsample, bilinear_kernel

NAME = "transposed_conv"
TITLE = "Transposed convolution: 2x2 -> 4x4, and bilinear-initialized upsampling"
CAPTION = (
  "Top: the lecture's 2x2 input and 3x3 kernel; a stride-1 transposed convolution scatters a "
  "copy of the kernel scaled by each input pixel and sums them into a 4x4 output. Bottom: a "
  "real image upsampled x2 by the FCN's bilinear-initialized stride-2 transposed convolution, "
  "by jax.image.resize (bilinear), and their difference: zero away from the one-pixel border."
)
PAPER = common.Paper(
  source="Long et al. 2015, Sect. 3.3 (in-network upsampling)",
  setup="FCN upsampling layers",
  number=(
    "a transposed convolution (backwards strided convolution) initialized to bilinear "
    "interpolation upsamples, and it can be learned"
  ),
)

PICTURE_INPUT = ((1.0, 2.0), (3.0, 4.0))
PICTURE_KERNEL = ((1.0, 0.0, 1.0), (0.0, 2.0, 0.0), (1.0, 0.0, 3.0))


def get_config(size: str = "default") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = "fashion_mnist_idx"
  config.num_images = 32
  config.factors = (2, 4)
  config.seed = 0
  return common.sized(size, config, test={"num_images": 4}, full={"num_images": 256})


def scatter_transpose(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """y[i + a, j + b] += x[i, j] K[a, b] for x (h, w), K (k, k): output (h + k - 1, w + k - 1)."""
  h, w = x.shape
  k = kernel.shape[0]
  y = np.zeros((h + k - 1, w + k - 1), np.float64)
  for i in range(h):
    for j in range(w):
      y[i : i + k, j : j + k] += x[i, j] * kernel
  return y


def picture() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """The 2x2 -> 4x4 example through Flax's ConvTranspose and by explicit scattering."""
  x = np.asarray(PICTURE_INPUT, np.float32)
  k = np.asarray(PICTURE_KERNEL, np.float32)
  layer = nn.ConvTranspose(
    1, (3, 3), strides=(1, 1), padding="VALID", use_bias=False, transpose_kernel=True
  )
  y = layer.apply(
    {"params": {"kernel": jnp.asarray(k)[:, :, None, None]}}, jnp.asarray(x)[None, :, :, None]
  )
  return x, k, np.asarray(y)[0, :, :, 0], scatter_transpose(x, k)


def upsample_errors(images: jax.Array, factor: int) -> dict:
  """Bilinear transposed convolution vs jax.image.resize on (N, H, W, C) images."""
  layer = BilinearUpsample(factor=factor)
  variables = layer.init(jax.random.PRNGKey(0), images)
  up = layer.apply(variables, images)
  n, h, w, c = images.shape
  ref = jax.image.resize(images, (n, factor * h, factor * w, c), "bilinear")
  diff = np.abs(np.asarray(up - ref))
  border = factor
  interior = diff[:, border:-border, border:-border]

  # adjoint: the transpose of the upsampling is the stride-f convolution with the same kernel
  kernel = bilinear_kernel(factor)
  k = kernel.shape[0]
  lo = k - 1 - (k - factor) // 2  # BilinearUpsample's leading padding
  y = jax.random.normal(jax.random.PRNGKey(1), up.shape)
  adjoint = jax.linear_transpose(lambda v: layer.apply(variables, v), images)(y)[0]
  kern = jnp.tile(jnp.asarray(kernel)[:, :, None, None], (1, 1, 1, c))
  strided = jax.lax.conv_general_dilated(
    y,
    kern,
    (factor, factor),
    ((k - 1 - lo, k - 1 - lo),) * 2,
    dimension_numbers=("NHWC", "HWIO", "NHWC"),
    feature_group_count=c,
  )
  strided = strided[:, :h, :w]
  return {
    "up": np.asarray(up),
    "ref": np.asarray(ref),
    "interior_max": float(interior.max()),
    "border_max": float(diff.max()),
    "adjoint_max": float(np.abs(np.asarray(adjoint - strided)).max()),
    "kernel": kernel,
  }


def run(config: ml_collections.ConfigDict) -> FigureResult:
  name, train, _, _ = _fit.load_data(config.dataset, seed=config.seed)
  images = jnp.asarray(train[0][: config.num_images])
  x, k, y, scattered = picture()
  checks = [
    check(
      "2x2 input, 3x3 kernel, stride 1: output shape", list(y.shape), [4, 4], y.shape == (4, 4)
    ),
    check_less(
      "max abs(ConvTranspose - scatter-add of scaled kernels), 2x2 -> 4x4",
      float(np.abs(y - scattered).max()),
      1e-6,
    ),
  ]
  data = {
    "dataset": name,
    "picture_input": x.tolist(),
    "picture_kernel": k.tolist(),
    "picture_output": y.tolist(),
    "factors": {},
  }
  for f in config.factors:
    e = upsample_errors(images, f)
    checks += [
      check_less(
        f"x{f}: max abs(bilinear transposed conv - jax.image.resize), interior",
        e["interior_max"],
        1e-5,
      ),
      check_greater(
        f"x{f}: max difference within {f} pixels of the border (zero padding)",
        e["border_max"],
        1e-3,
      ),
      check_less(
        f"x{f}: max abs(adjoint of the upsampling - stride-{f} conv, same kernel)",
        e["adjoint_max"],
        1e-4,
      ),
    ]
    data["factors"][str(f)] = {
      "interior_max": e["interior_max"],
      "border_max": e["border_max"],
      "adjoint_max": e["adjoint_max"],
      "kernel": e["kernel"].tolist(),
    }
    if f == config.factors[0]:
      data["example"] = {
        "factor": f,
        "input": np.asarray(images[0, :, :, 0]).tolist(),
        "up": e["up"][0, :, :, 0].tolist(),
        "ref": e["ref"][0, :, :, 0].tolist(),
      }
  return FigureResult(NAME, TITLE, CAPTION, checks, data, paper=PAPER)


def _grid(ax, values, title, fmt="{:g}", cmap="Blues"):
  values = np.asarray(values)
  ax.imshow(values, cmap=cmap, vmin=0, vmax=max(values.max(), 1e-9))
  for (i, j), v in np.ndenumerate(values):
    ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=9)
  ax.set_xticks(np.arange(values.shape[1]))
  ax.set_yticks(np.arange(values.shape[0]))
  ax.set_title(title, fontsize=9)


def plot(result: FigureResult, out_dir) -> list[pathlib.Path]:
  d = result.data
  x, k = np.asarray(d["picture_input"]), np.asarray(d["picture_kernel"])
  fig, axes = common.subplots(2, 7, figsize=(20, 6.5), title=TITLE)
  _grid(axes[0, 0], x, "input x (2x2)")
  _grid(axes[0, 1], k, "kernel K (3x3)", cmap="Oranges")
  for n, (i, j) in enumerate(np.ndindex(2, 2)):
    part = np.zeros((4, 4))
    part[i : i + 3, j : j + 3] = x[i, j] * k
    _grid(axes[0, 2 + n], part, f"x[{i},{j}] * K placed at ({i},{j})", cmap="Greens")
  _grid(axes[0, 6], d["picture_output"], "sum: output (4x4)")
  ex = d["example"]
  up, ref = np.asarray(ex["up"]), np.asarray(ex["ref"])
  f = ex["factor"]
  kern = np.asarray(d["factors"][str(f)]["kernel"])
  panels = [
    (ex["input"], f"real image ({d['dataset']})", "gray"),
    (kern, f"bilinear kernel, factor {f}", "Oranges"),
    (up, f"transposed conv, stride {f}", "gray"),
    (ref, "jax.image.resize bilinear", "gray"),
    (np.abs(up - ref), "abs difference (border only)", "magma"),
  ]
  for ax, (img, title, cmap) in zip(axes[1], panels, strict=False):
    im = ax.imshow(np.asarray(img), cmap=cmap)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
  for ax in axes[1, len(panels) :]:
    ax.axis("off")
  stats = "\n".join(
    f"x{fac}: interior max diff {v['interior_max']:.1e}\n"
    f"     border max diff {v['border_max']:.2f}\n"
    f"     adjoint vs strided conv {v['adjoint_max']:.1e}"
    for fac, v in d["factors"].items()
  )
  axes[1, 5].text(0, 0.5, stats, fontsize=9, family="monospace", va="center")
  return [common.save_figure(fig, out_dir, NAME)]
