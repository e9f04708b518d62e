"""The lecture's augmentations as pure, jit-friendly JAX functions of one image.

Images are (H, W, C) float arrays, masks (H, W) integer arrays; every random function takes a
``jax.random`` key first and can be ``jax.vmap``-ed over a batch with split keys. Sizes
(crop size, padding) are static Python ints. The host (NumPy) versions used inside the input
pipeline are the ``host_*`` functions of :mod:`research.data.pipeline`.

AlexNet (Krizhevsky et al., 2012), as in the lecture: subtract the training mean; train on
random 224 x 224 crops of the 256 x 256 images and their mirror images; at test time average
the predictions of ten crops (four corners and the centre, and their mirror images); shift the
RGB intensities along the principal components of the training pixels,
``[I_R, I_G, I_B] += [P_1, P_2, P_3] [a_1 l_1, a_2 l_2, a_3 l_3]^T`` with ``a_i ~ N(0, 0.1^2)``.
The lecture adds rotations, stretches, random erasing and noise.
"""

import jax
import jax.numpy as jnp
from jax.scipy import ndimage


def flip_left_right(image: jax.Array) -> jax.Array:
  """Mirror image along the width axis: (H, W, ...) -> (H, W, ...). An involution."""
  return image[:, ::-1]


def random_flip(key: jax.Array, image: jax.Array) -> jax.Array:
  """``flip_left_right(image)`` with probability 1/2."""
  return jnp.where(jax.random.bernoulli(key), flip_left_right(image), image)


def crop(image: jax.Array, top, left, size: int) -> jax.Array:
  """The ``size x size`` window whose corner is (top, left); top / left may be traced."""
  return jax.lax.dynamic_slice(
    image, (top, left) + (0,) * (image.ndim - 2), (size, size) + image.shape[2:]
  )


def _random_corner(key: jax.Array, height: int, width: int, size: int):
  if size > height or size > width:
    raise ValueError(f"crop size {size} exceeds the image size {height}x{width}.")
  top_key, left_key = jax.random.split(key)
  top = jax.random.randint(top_key, (), 0, height - size + 1)
  left = jax.random.randint(left_key, (), 0, width - size + 1)
  return top, left


def random_crop(key: jax.Array, image: jax.Array, size: int) -> jax.Array:
  """A uniformly placed ``size x size`` crop: (H, W, C) -> (size, size, C) (AlexNet: 224 of 256)."""
  top, left = _random_corner(key, image.shape[0], image.shape[1], size)
  return crop(image, top, left, size)


def pad_and_crop_at(image: jax.Array, top, left, padding: int, fill=0) -> jax.Array:
  """Pads ``padding`` pixels of ``fill`` per side, then takes the (H, W) window at (top, left).

  (top, left) in [0, 2 padding]; they may be traced. (H, W, ...) -> (H, W, ...).
  """
  widths = [(padding, padding), (padding, padding)] + [(0, 0)] * (image.ndim - 2)
  padded = jnp.pad(image, widths, constant_values=jnp.asarray(fill, image.dtype))
  return jax.lax.dynamic_slice(padded, (top, left) + (0,) * (image.ndim - 2), image.shape)


def _random_shift(key: jax.Array, padding: int):
  top_key, left_key = jax.random.split(key)
  top = jax.random.randint(top_key, (), 0, 2 * padding + 1)
  left = jax.random.randint(left_key, (), 0, 2 * padding + 1)
  return top, left


def pad_and_crop(key: jax.Array, image: jax.Array, padding: int = 4) -> jax.Array:
  """Zero-pads ``padding`` pixels per side and crops back to (H, W) at a random place (CIFAR)."""
  top, left = _random_shift(key, padding)
  return pad_and_crop_at(image, top, left, padding)


def pad_and_crop_pair(
  key: jax.Array, image: jax.Array, mask: jax.Array, padding: int = 8, mask_fill: int = 0
):
  """The same random pad-and-crop of image (H, W, C) (zeros) and mask (H, W) (``mask_fill``)."""
  top, left = _random_shift(key, padding)
  return (
    pad_and_crop_at(image, top, left, padding),
    pad_and_crop_at(mask, top, left, padding, mask_fill),
  )


def pca_colour_noise(
  key: jax.Array,
  image: jax.Array,
  eigenvalues: jax.Array,
  eigenvectors: jax.Array,
  std: float = 0.1,
) -> jax.Array:
  """AlexNet's PCA colour augmentation: adds ``P (a * l)`` to every pixel, ``a ~ N(0, std^2 I)``.

  Args:
    image: (H, W, C), in the units the statistics were computed in.
    eigenvalues: (C,) the eigenvalues ``l`` of the training pixels' C x C covariance.
    eigenvectors: (C, C) with the eigenvectors ``P_i`` as columns.
    std: standard deviation of each ``a_i`` (0.1 in AlexNet). Along eigenvector i the shift
      has standard deviation ``std * l_i``; one draw per image.
  """
  alpha = std * jax.random.normal(key, eigenvalues.shape, image.dtype)
  return image + eigenvectors @ (alpha * eigenvalues)


def affine_warp(
  image: jax.Array, angle: jax.Array, scale_y: jax.Array, scale_x: jax.Array, order: int = 1
) -> jax.Array:
  """Rotates by ``angle`` (radians, counter-clockwise) and stretches by (scale_y, scale_x)
  about the image centre; outside pixels are 0.

  Output pixel p samples the input at ``c + R(-angle) diag(1/scale) (p - c)``
  (``order=1`` bilinear for images, ``order=0`` nearest for masks). (H, W, ...) -> same.
  """
  height, width = image.shape[:2]
  rows, cols = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
  cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
  y, x = (rows - cy) / scale_y, (cols - cx) / scale_x
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  # Rows point down: this is the sense of np.rot90 (angle = pi / 2 gives np.rot90(image)).
  src_y = cy + cos * y + sin * x
  src_x = cx - sin * y + cos * x
  channels = image.reshape(height, width, -1)

  def sample(channel):
    return ndimage.map_coordinates(channel, [src_y, src_x], order=order, mode="constant")

  out = jax.vmap(sample, in_axes=2, out_axes=2)(channels)
  return out.reshape(image.shape)


def rotate_and_stretch(
  key: jax.Array, image: jax.Array, max_degrees: float = 15.0, max_stretch: float = 0.1
) -> jax.Array:
  """A random rotation in [-max_degrees, max_degrees] and per-axis stretch in
  [1 - max_stretch, 1 + max_stretch] (the lecture's "rotations, stretches")."""
  angle, scale_y, scale_x = _random_geometry(key, max_degrees, max_stretch)
  return affine_warp(image, angle, scale_y, scale_x)


def _random_geometry(key, max_degrees, max_stretch):
  angle_key, y_key, x_key = jax.random.split(key, 3)
  limit = jnp.deg2rad(max_degrees)
  angle = jax.random.uniform(angle_key, (), minval=-limit, maxval=limit)
  scale_y = jax.random.uniform(y_key, (), minval=1 - max_stretch, maxval=1 + max_stretch)
  scale_x = jax.random.uniform(x_key, (), minval=1 - max_stretch, maxval=1 + max_stretch)
  return angle, scale_y, scale_x


def random_erasing(
  key: jax.Array,
  image: jax.Array,
  probability: float = 0.5,
  area_range: tuple[float, float] = (0.02, 0.25),
  aspect_range: tuple[float, float] = (0.3, 3.3),
  value: float = 0.0,
) -> jax.Array:
  """With ``probability``, sets one random rectangle to ``value`` (Zhong et al., 2017).

  Its area is a uniform fraction in ``area_range`` of the image, its aspect ratio h / w
  log-uniform in ``aspect_range``, clipped to the image; the rest of the image is unchanged.
  """
  height, width = image.shape[:2]
  apply_key, area_key, aspect_key, top_key, left_key = jax.random.split(key, 5)
  area = jax.random.uniform(area_key, (), minval=area_range[0], maxval=area_range[1])
  log_aspect = jax.random.uniform(
    aspect_key, (), minval=jnp.log(aspect_range[0]), maxval=jnp.log(aspect_range[1])
  )
  aspect = jnp.exp(log_aspect)
  h = jnp.clip(jnp.round(jnp.sqrt(area * height * width * aspect)), 1, height).astype(jnp.int32)
  w = jnp.clip(jnp.round(jnp.sqrt(area * height * width / aspect)), 1, width).astype(jnp.int32)
  top = jax.random.randint(top_key, (), 0, height - h + 1)
  left = jax.random.randint(left_key, (), 0, width - w + 1)
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
  inside = inside.reshape(inside.shape + (1,) * (image.ndim - 2))
  erased = jnp.where(inside, jnp.asarray(value, image.dtype), image)
  return jnp.where(jax.random.bernoulli(apply_key, probability), erased, image)


def gaussian_noise(key: jax.Array, image: jax.Array, std: float = 0.05) -> jax.Array:
  """Adds independent N(0, std^2) noise to every pixel and channel."""
  return image + std * jax.random.normal(key, image.shape, image.dtype)


# ----------------------------------------------------------------------------- test time


def ten_crop(image: jax.Array, size: int) -> jax.Array:
  """AlexNet's ten test views: (H, W, C) -> (10, size, size, C).

  Order: top-left, top-right, bottom-left, bottom-right, centre, then the same five mirrored.
  """
  height, width = image.shape[:2]
  if size > height or size > width:
    raise ValueError(f"crop size {size} exceeds the image size {height}x{width}.")
  corners = [
    (0, 0),
    (0, width - size),
    (height - size, 0),
    (height - size, width - size),
    ((height - size) // 2, (width - size) // 2),
  ]
  crops = jnp.stack([image[t : t + size, l : l + size] for t, l in corners])
  return jnp.concatenate([crops, crops[:, :, ::-1]])


def ten_crop_batch(images: jax.Array, size: int) -> jax.Array:
  """(N, H, W, C) -> (N * 10, size, size, C), the ten views of each image consecutive."""
  crops = jax.vmap(ten_crop, in_axes=(0, None))(images, size)
  return crops.reshape(-1, *crops.shape[2:])


def average_crop_predictions(logits: jax.Array, num_crops: int = 10) -> jax.Array:
  """Averages the softmax probabilities of each image's crops: (N * num_crops, K) -> (N, K)."""
  probabilities = jax.nn.softmax(logits, axis=-1)
  return probabilities.reshape(-1, num_crops, logits.shape[-1]).mean(axis=1)


# ----------------------------------------------------------------------------- segmentation


def random_flip_pair(key: jax.Array, image: jax.Array, mask: jax.Array):
  """Flips image (H, W, C) and mask (H, W) together with probability 1/2."""
  flip = jax.random.bernoulli(key)
  return (
    jnp.where(flip, flip_left_right(image), image),
    jnp.where(flip, flip_left_right(mask), mask),
  )


def random_crop_pair(key: jax.Array, image: jax.Array, mask: jax.Array, size: int):
  """The same random ``size x size`` window of image (H, W, C) and mask (H, W)."""
  top, left = _random_corner(key, image.shape[0], image.shape[1], size)
  return crop(image, top, left, size), crop(mask, top, left, size)


def rotate_and_stretch_pair(
  key: jax.Array,
  image: jax.Array,
  mask: jax.Array,
  max_degrees: float = 15.0,
  max_stretch: float = 0.1,
  mask_fill: int = 0,
):
  """The same random rotation and stretch of image (bilinear) and mask (nearest).

  Mask pixels that come from outside the image get ``mask_fill``.
  """
  angle, scale_y, scale_x = _random_geometry(key, max_degrees, max_stretch)
  warped = affine_warp(image, angle, scale_y, scale_x)
  shifted = (mask - mask_fill).astype(jnp.float32)
  warped_mask = affine_warp(shifted, angle, scale_y, scale_x, order=0)
  return warped, (jnp.round(warped_mask) + mask_fill).astype(mask.dtype)
