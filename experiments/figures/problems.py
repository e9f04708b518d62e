"""The test problems, losses and small networks that more than one figure uses.

Part 1 (optimization) minimizes explicit functions f: (d,) -> () of a JAX array:

    quadratic(lam)       f(x) = 1/2 sum_i lam_i x_i^2                  (with `spectrum`)
    beale                Beale's function, minimum 0 at (3, 0.5)
    double_well          f(x, y) = x^2/2 + y^4/4 - y^2/2, a saddle at 0
    logistic_loss        f(w) = 1/N sum_i log(1 + exp(-y_i <x_i, w>)) + l2/2 |w|^2
                         on the data of `logistic_data` / `logistic_train_val`

Part 2 (networks) trains `SmallCNN`, the 4-layer CNN of `relu_vs_tanh_cnn` and
`data_augmentation`; the other networks come from `research.models.create`.

Call the part-1 problems inside `jax.enable_x64(True)` for float64, as the figures do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.models import initializers, layers
from research.train.optimizer import build_optimizer

Array = jax.Array
Fun = Callable[[Array], Array]


# ---------------------------------------------------------------------- smooth test functions


def quadratic(eigenvalues: Array) -> Fun:
  """f(x) = 1/2 sum_i lambda_i x_i^2: L = max lambda, mu = min lambda, minimum 0 at 0.

  eigenvalues: (d,); f: (d,) -> ().
  """
  lam = jnp.asarray(eigenvalues)
  return lambda x: 0.5 * jnp.sum(lam * x * x)


def spectrum(n: int, smallest: float, largest: float) -> np.ndarray:
  """n eigenvalues spaced evenly on a log scale in [smallest, largest] (float64, (n,))."""
  return np.geomspace(smallest, largest, n)


def beale(p: Array) -> Array:
  """Beale's function of p = (x, y), (2,) -> ():
  (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2; minimum 0 at (3, 0.5)."""
  x, y = p[0], p[1]
  return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def double_well(p: Array) -> Array:
  """f(x, y) = x^2 / 2 + y^4 / 4 - y^2 / 2, (2,) -> (): a saddle at 0 (f = 0), minima -1/4 at
  (0, +-1); the ridge y = 0 leads into the saddle."""
  x, y = p[0], p[1]
  return 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2


# ------------------------------------------------------------------------ logistic regression


def logistic_data(
  num_points: int, dim: int, seed: int, signal: float | None = 2.0
) -> tuple[Array, Array]:
  """A random logistic-regression data set: x (N, d) ~ N(0, I), labels y (N,) in {-1, +1}.

  P(y_i = 1) = sigmoid(<x_i, w_true>) with w_true ~ N(0, I) scaled by signal / sqrt(d) (so
  that <x_i, w_true> has std `signal`), or unscaled when `signal` is None. NumPy draws in the
  order x, w_true, labels; returned as JAX arrays (float64 under `jax.enable_x64`).
  """
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(num_points, dim))
  w_true = rng.normal(size=dim)
  if signal is not None:
    w_true = w_true * signal / np.sqrt(dim)
  y = np.where(rng.random(num_points) < 1 / (1 + np.exp(-x @ w_true)), 1.0, -1.0)
  return jnp.asarray(x), jnp.asarray(y)


def logistic_train_val(
  num_points: int, dim: int, seed: int
) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
  """((x_train, y_train), (x_val, y_val)): N training and N validation points of one
  `logistic_data(2 N, dim, seed)` draw."""
  x, y = logistic_data(2 * num_points, dim, seed)
  return (x[:num_points], y[:num_points]), (x[num_points:], y[num_points:])


def logistic_loss(w: Array, x: Array, y: Array, l2: float) -> Array:
  """f(w) = 1/N sum_i log(1 + exp(-y_i <x_i, w>)) + l2/2 |w|^2 for w (d,), x (N, d), y (N,)
  in {-1, +1}: convex, (l2)-strongly convex, smooth with L <= |x|_2^2 / (4N) + l2."""
  return jnp.mean(jnp.logaddexp(0.0, -y * (x @ w))) + 0.5 * l2 * jnp.sum(w * w)


def space_to_depth(images: np.ndarray, block: int) -> np.ndarray:
  """(N, H, W, C) -> (N, H / block, W / block, block^2 C): each block x block patch of pixels
  stacked along the channels (lossless; block 1 is the identity). A 3x3 convolution of the
  result sees a 3 block x 3 block patch of the image at stride `block`: a strided stem, so
  that a CIFAR-sized network runs on 28x28 images at a CPU's budget."""
  n, h, w, c = images.shape
  patches = images.reshape(n, h // block, block, w // block, block, c)
  return patches.transpose(0, 1, 3, 2, 4, 5).reshape(n, h // block, w // block, block * block * c)


@functools.cache
def step_decay_momentum(
  rule: str, learning_rate: float, boundaries: tuple[int, ...], weight_decay: float
) -> optax.GradientTransformation:
  """He et al.'s (2016) and Huang et al.'s (2017) CIFAR recipe as `research.main` builds it
  (`research.train.optimizer.build_optimizer`): momentum 0.9 (`rule` 'heavy_ball' or
  'nesterov'), the L2 penalty `weight_decay` added to g, the rate divided by 10 at each of
  `boundaries`. Cached, so that every run of a setting shares one optimizer object and with it
  `_fit`'s compiled programs."""
  return build_optimizer(
    {
      "name": rule,
      "learning_rate": learning_rate,
      "beta": 0.9,
      "weight_decay": weight_decay,
      "schedule": {"name": "step_decay", "boundaries": tuple(boundaries), "factor": 0.1},
    }
  )


# ------------------------------------------------------------------------------ small networks


class SmallCNN(nn.Module):
  """conv3x3(c) - act - conv3x3(c) - act - maxpool2 - conv3x3(2c) - act - mean - dense.

  (N, H, W, C) -> (N, num_classes) logits; c = `width`, activations from
  `research.models.layers` (`act1`..`act3`), kernels from `research.models.initializers`.
  Follows the `research.models` call convention (`train=` is accepted; nothing depends on it).
  """

  num_classes: int
  activation: str = "relu"
  width: int = 16
  kernel_init: str = "lecun_normal"

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train  # no dropout, no normalization
    kinit = initializers.get(self.kernel_init)
    for i, features in enumerate((self.width, self.width, 2 * self.width)):
      x = nn.Conv(features, (3, 3), padding="SAME", kernel_init=kinit, name=f"conv{i + 1}")(x)
      x = layers.activation(self.activation, name=f"act{i + 1}")(x)
      if i == 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    return nn.Dense(self.num_classes, kernel_init=kinit, name="head")(x.mean(axis=(1, 2)))
