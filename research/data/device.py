"""Batches built on the device: the shuffle, gather, augmentation and uint8 -> float of a step.

These are pure ``jnp`` functions that run inside the compiled training program, so a small
split held in device memory (:func:`research.data.load_split`) never goes back through Python.
The host pipeline (:mod:`research.data.pipeline`) serves what does not fit; its batches pass
through :func:`to_float` and :func:`colour` here too, so both paths hand the model the same
floats.

Order. A process holds its share of ``n`` training examples and reads them as one endless
stream, epoch after epoch; epoch ``e`` visits them in the order
``permutation(fold_in(shuffle_key, e), n)``, so every example is seen once per epoch. Step ``s``
takes stream positions ``s b ... s b + b - 1`` (``b``: the process's batch), so a batch may
straddle two epochs (as in the host pipeline) and the position of the whole input is one
integer, the step. The permutations of the current and the next epoch are carried through the
steps (:class:`EpochOrders`) and recomputed only when a step enters a new epoch.

Randomness. Row ``i`` of step ``s``'s batch is augmented with
``fold_in(fold_in(augment_key, s), i)``: it depends neither on how many devices share the
batch nor on how many steps run per dispatch. Both keys come from ``(seed, process_index)``
(:func:`stream_keys`), so processes draw independently.

Augmentation presets (the datasets' defaults, see ``pipeline.default_augmentation``), each a
geometric part on uint8 and a colour part on floats in [0, 1]:

* ``none``; ``flip``: left-right with probability 1/2;
* ``crop_flip``: zero-pad 4 pixels, crop back at a random place, flip (CIFAR);
* ``segmentation``: the same pad-8-and-crop and flip of image and mask (mask padding 1,
  the background class);
* ``alexnet``: a random 224 x 224 crop of the 256 x 256 record, flip, then the PCA colour
  shift ``P (a * lambda)``, ``a ~ N(0, 0.1^2)`` (needs the channel statistics).

Shapes: images ``(n, H, W, C)`` uint8 (or float, used as they are), labels ``(n,)`` or
``(n, H, W)`` integers; a batch is ``{'image': float32 (b, h, w, C), 'label': int32 (b, ...)}``.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from research.data import augment
from research.errors import ConfigError

PRESETS = ("none", "flip", "crop_flip", "segmentation", "alexnet")
CROP_FLIP_PADDING = 4
SEGMENTATION_PADDING = 8
SEGMENTATION_MASK_FILL = 1  # background
ALEXNET_CROP = 224
PCA_STD = 0.1

# An augmentation of one example: (key, image (H, W, C), label) -> (image, label).
ExampleAugment = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


def stream_keys(seed, process_index=0) -> tuple[jax.Array, jax.Array]:
  """(shuffle_key, augment_key) of a process: two independent streams from (seed, process)."""
  base = jax.random.fold_in(jax.random.PRNGKey(seed), process_index)
  return jax.random.fold_in(base, 0), jax.random.fold_in(base, 1)


# ----------------------------------------------------------------------------- order


class EpochOrders(NamedTuple):
  """The visiting orders of two consecutive epochs, carried from step to step."""

  epoch: jax.Array  # () int32, the epoch of `first`
  first: jax.Array  # (n,) int32, permutation of epoch `epoch`
  second: jax.Array  # (n,) int32, permutation of epoch `epoch + 1`


def epoch_order(shuffle_key: jax.Array, epoch, n: int) -> jax.Array:
  """The order (n,) int32 in which epoch ``epoch`` visits the n examples."""
  key = jax.random.fold_in(shuffle_key, epoch)
  return jax.random.permutation(key, n).astype(jnp.int32)


def orders_at(shuffle_key: jax.Array, epoch, n: int) -> EpochOrders:
  epoch = jnp.asarray(epoch, jnp.int32)
  return EpochOrders(
    epoch, epoch_order(shuffle_key, epoch, n), epoch_order(shuffle_key, epoch + 1, n)
  )


def stream_position(step, batch_size: int, n: int) -> tuple[jax.Array, jax.Array]:
  """(epoch, offset) of the first example of step ``step``: ``divmod(step * batch_size, n)``.

  Computed as ``step = q n + r``: ``q b + (r b) // n`` and ``(r b) % n``, so nothing exceeds
  int32 as long as ``n * batch_size < 2**31`` (checked by :func:`check_stream`).
  """
  step = jnp.asarray(step, jnp.int32)
  q, r = step // n, step % n
  return q * batch_size + (r * batch_size) // n, (r * batch_size) % n


def check_stream(n: int, batch_size: int) -> None:
  """Raises ConfigError if a batch of ``batch_size`` cannot be drawn from ``n`` examples."""
  if batch_size > n:
    raise ConfigError(
      f"batch of {batch_size} examples per process exceeds the {n} examples it holds; use a "
      f"global batch of at most {n} x the process count"
    )
  if n * batch_size >= 2**31:
    raise ConfigError(
      f"{n} examples x batch {batch_size} overflows the int32 stream position; set "
      "dataset.in_memory=False for this dataset"
    )


def advance(
  orders: EpochOrders, shuffle_key: jax.Array, step, batch_size: int, n: int
) -> EpochOrders:
  """``orders`` moved to the epoch of step ``step``'s first example (recomputed only then)."""
  epoch, _ = stream_position(step, batch_size, n)
  return jax.lax.cond(
    epoch == orders.epoch, lambda: orders, lambda: orders_at(shuffle_key, epoch, n)
  )


def batch_indices(orders: EpochOrders, step, rows: jax.Array, batch_size: int, n: int) -> jax.Array:
  """Indices into the split of the given ``rows`` (r,) of step ``step``'s batch of ``batch_size``.

  ``orders`` must be at the step's first epoch (:func:`advance`); rows past the epoch's end
  come from the next epoch's order.
  """
  _, offset = stream_position(step, batch_size, n)
  within = offset + rows
  return jnp.where(within < n, orders.first[within % n], orders.second[within % n])


# ----------------------------------------------------------------------------- augmentation


def row_keys(augment_key: jax.Array, step, rows: jax.Array) -> jax.Array:
  """Keys (r, 2) of the given rows of step ``step``: fold_in(fold_in(augment_key, step), row)."""
  step_key = jax.random.fold_in(augment_key, step)
  return jax.vmap(lambda row: jax.random.fold_in(step_key, row))(rows)


def check_preset(preset) -> None:
  if not callable(preset) and preset not in PRESETS:
    raise ConfigError(f"unknown augmentation {preset!r}; use one of {PRESETS} or a callable")


def geometric(preset: str, key: jax.Array, image: jax.Array, label: jax.Array):
  """The preset's crops and flips of one uint8 example: (image, label) -> (image, label)."""
  crop_key, flip_key = jax.random.split(key)
  if preset == "flip":
    return augment.random_flip(flip_key, image), label
  if preset == "crop_flip":
    image = augment.pad_and_crop(crop_key, image, CROP_FLIP_PADDING)
    return augment.random_flip(flip_key, image), label
  if preset == "segmentation":
    image, label = augment.pad_and_crop_pair(
      crop_key, image, label, SEGMENTATION_PADDING, SEGMENTATION_MASK_FILL
    )
    return augment.random_flip_pair(flip_key, image, label)
  if preset == "alexnet":
    image = augment.random_crop(crop_key, image, ALEXNET_CROP)
    return augment.random_flip(flip_key, image), label
  return image, label


def colour(preset: str, key: jax.Array, image: jax.Array, eigenvalues, eigenvectors):
  """The preset's colour part on one float image in [0, 1] (AlexNet's PCA shift)."""
  if preset != "alexnet":
    return image
  colour_key = jax.random.fold_in(key, 2)
  return augment.pca_colour_noise(colour_key, image, eigenvalues, eigenvectors, PCA_STD)


def to_float(images: jax.Array, mean=None, std=None) -> jax.Array:
  """uint8 -> float32 in [0, 1] (x / 255; other dtypes as they are), then (x - mean) / std."""
  x = images.astype(jnp.float32)
  if images.dtype == jnp.uint8:
    x = x / 255.0
  if mean is not None:
    x = (x - mean) / std
  return x


def central_crop(images: jax.Array, size: int | None) -> jax.Array:
  """(N, H, W, C) -> (N, size, size, C), the centred window (the evaluation view of AlexNet)."""
  if size is None or images.shape[1:3] == (size, size):
    return images
  top, left = (images.shape[1] - size) // 2, (images.shape[2] - size) // 2
  return images[:, top : top + size, left : left + size]


def standardize(x: jax.Array, mean=None, std=None) -> jax.Array:
  return x if mean is None else (x - mean) / std


def prepare(
  preset,
  keys: jax.Array,
  images: jax.Array,
  labels: jax.Array,
  *,
  geometry: bool = True,
  mean=None,
  std=None,
  eigenvalues=None,
  eigenvectors=None,
) -> dict:
  """The training batch of gathered examples: augment, uint8 -> float, standardize.

  Args:
    preset: a name of PRESETS, or an :data:`ExampleAugment` applied to each standardized
      float example.
    keys: (b, 2) per-row keys (:func:`row_keys`).
    images, labels: (b, H, W, C) uint8 (or float) and (b,) / (b, H, W) integers.
    geometry: apply the preset's crops and flips (False when the host pipeline already did).
    mean, std: per-channel standardization (C,), or None.
    eigenvalues, eigenvectors: the channel statistics' eigenpairs (``alexnet`` only).

  Returns:
    ``{'image': float32 (b, h, w, C), 'label': int32 (b, ...)}``.
  """
  if isinstance(preset, str) and geometry and preset != "none":
    images, labels = jax.vmap(lambda k, x, y: geometric(preset, k, x, y))(keys, images, labels)
  x = to_float(images)
  if preset == "alexnet":
    x = jax.vmap(lambda k, image: colour(preset, k, image, eigenvalues, eigenvectors))(keys, x)
  x = standardize(x, mean, std)
  labels = labels.astype(jnp.int32)
  if callable(preset):
    x, labels = jax.vmap(preset)(keys, x, labels)
  return {"image": x, "label": labels}


def eval_batch(
  images: jax.Array,
  labels: jax.Array,
  first,
  rows: jax.Array,
  count,
  *,
  crop: int | None = None,
  mean=None,
  std=None,
) -> dict:
  """Rows ``first + rows`` of an in-order pass over ``count`` examples, padded and masked.

  Rows at or past ``count`` repeat example 0 with ``mask`` 0, as the host pipeline pads its
  last batch. Returns ``{'image', 'label', 'mask': float32 (r,)}``.
  """
  index = first + rows
  mask = (index < count).astype(jnp.float32)
  index = jnp.where(index < count, index, 0)
  x = central_crop(images[index], crop)
  return {
    "image": standardize(to_float(x), mean, std),
    "label": labels[index].astype(jnp.int32),
    "mask": mask,
  }
