"""Training augmentations run on the host inside the input pipeline (NumPy, one example).

Each function is pure given its ``rng`` (a ``np.random.Generator`` that grain derives from the
pipeline seed and the example's position, so a resumed pipeline draws the same numbers). Images
are (H, W, C) arrays of any dtype; masks are (H, W). The device-side (JAX) versions and the
other augmentations are in :mod:`research.data.augment`.
"""

import numpy as np


def flip_left_right(image: np.ndarray) -> np.ndarray:
  """Mirror image (H, W, ...) along the width axis."""
  return image[:, ::-1]


def random_flip(rng: np.random.Generator, image: np.ndarray, *others: np.ndarray):
  """Flips ``image`` (and any ``others``, e.g. a mask) left-right with probability 1/2."""
  flip = rng.random() < 0.5
  out = [flip_left_right(x) if flip else x for x in (image, *others)]
  return out[0] if not others else tuple(out)


def random_crop(rng: np.random.Generator, image: np.ndarray, size: int, *others: np.ndarray):
  """A uniformly placed ``size x size`` window of ``image`` (and the same one of ``others``).

  AlexNet: random 224 x 224 patches of the 256 x 256 images.
  """
  h, w = image.shape[:2]
  if size > h or size > w:
    raise ValueError(f"crop size {size} exceeds the image size {h}x{w}; use size <= {min(h, w)}.")
  top = int(rng.integers(0, h - size + 1))
  left = int(rng.integers(0, w - size + 1))
  out = [x[top : top + size, left : left + size] for x in (image, *others)]
  return out[0] if not others else tuple(out)


def pad_and_crop(
  rng: np.random.Generator, image: np.ndarray, padding: int, *others: np.ndarray, other_fill=0
):
  """Zero-pads ``padding`` pixels on each side, then crops back to (H, W) at a random place.

  The CIFAR augmentation of ResNet (padding 4). ``others`` (masks) get the same window, padded
  with ``other_fill`` (e.g. the background class).
  """
  h, w = image.shape[:2]
  widths = lambda x: [(padding, padding), (padding, padding)] + [(0, 0)] * (x.ndim - 2)
  padded = [np.pad(image, widths(image))]
  padded += [np.pad(x, widths(x), constant_values=other_fill) for x in others]
  top = int(rng.integers(0, 2 * padding + 1))
  left = int(rng.integers(0, 2 * padding + 1))
  out = [x[top : top + h, left : left + w] for x in padded]
  return out[0] if not others else tuple(out)


def pca_colour_shift(
  rng: np.random.Generator, eigenvalues: np.ndarray, eigenvectors: np.ndarray, std: float = 0.1
) -> np.ndarray:
  """AlexNet's colour shift: [P_1 P_2 P_3] [a_1 l_1, a_2 l_2, a_3 l_3]^T, a_i ~ N(0, std^2).

  Returns the (C,) vector added to every pixel of one image (in the units of the statistics,
  [0, 1] here); one draw per image.
  """
  alpha = rng.normal(0.0, std, size=eigenvalues.shape)
  return (eigenvectors @ (alpha * eigenvalues)).astype(np.float32)
