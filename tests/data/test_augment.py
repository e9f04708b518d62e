"""Each augmentation's defining property, on device (JAX) and on the host (NumPy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data import augment as A
from research.data import pipeline as H

KEYS = jax.random.split(jax.random.key(0), 64)


def _image(h=12, w=10, c=3, seed=0):
  return np.random.default_rng(seed).random((h, w, c), dtype=np.float32)


def _window_offsets(big, small):
  """All (top, left) where ``small`` is a window of ``big``."""
  s = small.shape[0]
  return [
    (t, l)
    for t in range(big.shape[0] - s + 1)
    for l in range(big.shape[1] - small.shape[1] + 1)
    if np.array_equal(big[t : t + s, l : l + small.shape[1]], small)
  ]


def test_flip_is_an_involution_and_mirrors_columns():
  x = _image()
  np.testing.assert_array_equal(A.flip_left_right(A.flip_left_right(x)), x)
  np.testing.assert_array_equal(A.flip_left_right(x)[:, 0], x[:, -1])
  outs = jax.jit(jax.vmap(A.random_flip, in_axes=(0, None)))(KEYS, x)
  flipped = [bool(np.array_equal(o, x[:, ::-1])) for o in outs]
  assert all(f or np.array_equal(o, x) for f, o in zip(flipped, outs, strict=True))
  assert 16 < sum(flipped) < 48
  host = [np.array_equal(H.host_random_flip(np.random.default_rng(i), x), x) for i in range(64)]
  assert 16 < sum(host) < 48


def test_random_crop_224_of_256_is_a_window():
  rows, cols = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
  x = np.stack([rows, cols, rows + cols], axis=-1).astype(np.float32)  # pixel = its position
  crops = jax.jit(jax.vmap(A.random_crop, in_axes=(0, None, None)), static_argnums=2)(
    KEYS[:16], x, 224
  )
  host = [H.host_random_crop(np.random.default_rng(i), x, 224) for i in range(16)]
  assert crops.shape == (16, 224, 224, 3)
  corners = set()
  for crop in [*np.asarray(crops), *host]:
    top, left = int(crop[0, 0, 0]), int(crop[0, 0, 1])
    assert 0 <= top <= 32 and 0 <= left <= 32
    np.testing.assert_array_equal(crop, x[top : top + 224, left : left + 224])
    corners.add((top, left))
  assert len(corners) > 16
  with pytest.raises(ValueError, match="crop size 300"):
    H.host_random_crop(np.random.default_rng(0), x, 300)


def test_pad_and_crop_keeps_the_shape_and_shifts_by_at_most_the_padding():
  x = _image(8, 8, 3) + 1.0  # no zeros in the image, so the padding is recognisable
  padded = np.pad(x, [(4, 4), (4, 4), (0, 0)])
  outs = jax.vmap(A.pad_and_crop, in_axes=(0, None, None))(KEYS, x, 4)
  offsets = set()
  for out in outs:
    assert out.shape == x.shape
    (offset,) = _window_offsets(padded, np.asarray(out))
    offsets.add(offset)
  assert len(offsets) > 20  # many of the 81 placements occur
  host = H.host_pad_and_crop(np.random.default_rng(0), x, 4)
  assert host.shape == x.shape and len(_window_offsets(padded, host)) == 1


def _pca_setup():
  rotation, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))
  eigenvalues = np.array([0.0, 0.02, 0.2], np.float32)  # no variance along the first one
  return eigenvalues, rotation.astype(np.float32)


def test_pca_colour_noise_moves_along_eigenvectors_with_std_alpha_times_lambda():
  eigenvalues, eigenvectors = _pca_setup()
  x = _image(4, 4, 3)
  keys = jax.random.split(jax.random.key(1), 4000)
  noisy = jax.jit(jax.vmap(A.pca_colour_noise, in_axes=(0, None, None, None)))(
    keys, x, eigenvalues, eigenvectors
  )
  shifts = np.asarray(noisy - x)  # (4000, 4, 4, 3)
  np.testing.assert_allclose(shifts, np.broadcast_to(shifts[:, :1, :1], shifts.shape), atol=1e-6)
  coefficients = shifts[:, 0, 0] @ eigenvectors  # P^T shift = alpha * lambda
  np.testing.assert_allclose(coefficients[:, 0], 0.0, atol=1e-6)
  np.testing.assert_allclose(coefficients.std(0)[1:], 0.1 * eigenvalues[1:], rtol=0.06)
  np.testing.assert_allclose(coefficients.mean(0)[1:], 0.0, atol=0.1 * 0.2 * 0.1)
  host = np.stack(
    [
      H.host_pca_colour_shift(np.random.default_rng(i), eigenvalues, eigenvectors)
      for i in range(4000)
    ]
  )
  host_coefficients = host @ eigenvectors
  np.testing.assert_allclose(host_coefficients[:, 0], 0.0, atol=1e-6)
  np.testing.assert_allclose(host_coefficients.std(0)[1:], 0.1 * eigenvalues[1:], rtol=0.06)


def test_rotation_by_a_right_angle_and_identity_stretch():
  x = _image(9, 9, 2)
  np.testing.assert_allclose(A.affine_warp(x, jnp.pi / 2, 1.0, 1.0), np.rot90(x), atol=1e-5)
  np.testing.assert_allclose(A.affine_warp(x, 0.0, 1.0, 1.0), x, atol=1e-6)
  # Stretching by 2 along x maps the centre column to itself and doubles distances.
  stretched = A.affine_warp(x, 0.0, 1.0, 2.0)
  np.testing.assert_allclose(stretched[:, 4], x[:, 4], atol=1e-6)
  np.testing.assert_allclose(stretched[:, 6], x[:, 5], atol=1e-6)
  out = jax.jit(A.rotate_and_stretch)(KEYS[0], x)
  assert out.shape == x.shape and not np.allclose(out, x)


def test_random_erasing_fills_one_rectangle_and_leaves_the_rest():
  x = _image(16, 16, 3) + 1.0
  outs = jax.jit(jax.vmap(lambda k: A.random_erasing(k, x, probability=1.0)))(KEYS[:24])
  for out in np.asarray(outs):
    erased = np.all(out == 0.0, axis=-1)
    rows, cols = np.nonzero(erased)
    assert erased.sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # a full rectangle
    np.testing.assert_array_equal(out[~erased], x[~erased])
    assert 1 <= erased.sum() <= 0.25 * 256 * 1.5
  untouched = A.random_erasing(KEYS[0], x, probability=0.0)
  np.testing.assert_array_equal(untouched, x)


def test_gaussian_noise_has_the_stated_std():
  x = np.zeros((64, 64, 3), np.float32)
  noise = np.asarray(A.gaussian_noise(KEYS[0], x, std=0.2))
  assert abs(noise.mean()) < 0.01 and abs(noise.std() - 0.2) < 0.01


def test_ten_crop_views_and_prediction_averaging():
  x = _image(8, 8, 3)
  views = A.ten_crop(x, 6)
  assert views.shape == (10, 6, 6, 3)
  np.testing.assert_array_equal(views[0], x[:6, :6])
  np.testing.assert_array_equal(views[3], x[2:, 2:])
  np.testing.assert_array_equal(views[4], x[1:7, 1:7])
  np.testing.assert_array_equal(views[5:], views[:5, :, ::-1])
  batch = A.ten_crop_batch(np.stack([x, x + 1]), 6)
  assert batch.shape == (20, 6, 6, 3)
  np.testing.assert_array_equal(batch[10:], views + 1)
  logits = jax.random.normal(KEYS[1], (20, 5))
  averaged = A.average_crop_predictions(logits)
  assert averaged.shape == (2, 5)
  expected = jax.nn.softmax(logits).reshape(2, 10, 5).mean(1)
  np.testing.assert_allclose(averaged, expected, rtol=1e-6)
  np.testing.assert_allclose(averaged.sum(-1), 1.0, rtol=1e-6)
  same = A.average_crop_predictions(jnp.tile(logits[:1], (10, 1)))
  np.testing.assert_allclose(same[0], jax.nn.softmax(logits[0]), rtol=1e-6)


def _image_and_mask():
  mask = np.zeros((16, 16), np.int32)
  mask[2:9, 3:12] = 1
  mask[10:15, 1:6] = 2
  return np.repeat(mask[..., None].astype(np.float32), 3, axis=-1), mask


def test_segmentation_geometry_keeps_image_and_mask_aligned():
  image, mask = _image_and_mask()

  @jax.jit
  @jax.vmap
  def geometry(key):
    flip_key, crop_key, warp_key = jax.random.split(key, 3)
    img, msk = A.random_flip_pair(flip_key, image, mask)
    img, msk = A.random_crop_pair(crop_key, img, msk, 12)
    warped = A.rotate_and_stretch_pair(warp_key, image, mask, max_degrees=30)
    return img, msk, *warped

  crops, crop_masks, warped, warped_masks = geometry(KEYS[:16])
  assert crops.shape == (16, 12, 12, 3) and crop_masks.shape == (16, 12, 12)
  np.testing.assert_array_equal(crops[..., 0], crop_masks)
  assert warped_masks.dtype == mask.dtype
  # Bilinear image and nearest mask differ only along region borders.
  assert np.mean(np.round(warped[..., 0]) == warped_masks) > 0.9
  assert not np.array_equal(warped_masks[0], mask)
  rng = np.random.default_rng(0)
  for _ in range(16):
    img, msk = H.host_pad_and_crop(rng, image, 3, mask, other_fill=0)
    img, msk = H.host_random_flip(rng, img, msk)
    np.testing.assert_array_equal(img[..., 0], msk)
