"""Device-side batches: epoch orders, exact stream positions, augmentations equal to the host's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data import augment as A
from research.data import device as D
from research.data import pipeline
from research.data import pipeline as H


def _stream(n, batch, num_steps, seed=0):
  """Indices of steps 0..num_steps-1, each (batch,), carrying the orders as the engine does."""
  shuffle_key, _ = D.stream_keys(seed)
  rows = jnp.arange(batch)
  orders = D.orders_at(shuffle_key, 0, n)
  out = []
  for step in range(num_steps):
    orders = D.advance(orders, shuffle_key, step, batch, n)
    out.append(np.asarray(D.batch_indices(orders, step, rows, batch, n)))
  return np.concatenate(out)


def test_each_epoch_is_a_permutation_and_epochs_differ():
  n, batch = 37, 8  # batches straddle epochs: 37 is not a multiple of 8
  stream = _stream(n, batch, num_steps=30)
  epochs = [stream[e * n : (e + 1) * n] for e in range(len(stream) // n)]
  assert len(epochs) == 6
  for order in epochs:
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
  assert len({tuple(o) for o in epochs}) == len(epochs)
  # The same stream whatever the batch size: position p is example order[p // n][p % n].
  np.testing.assert_array_equal(_stream(n, 5, num_steps=40)[: len(stream)], stream[:200])


def test_orders_depend_on_seed_and_process_only():
  a = _stream(50, 10, 5, seed=0)
  np.testing.assert_array_equal(a, _stream(50, 10, 5, seed=0))
  assert not np.array_equal(a, _stream(50, 10, 5, seed=1))
  k0, _ = D.stream_keys(0, 0)
  k1, _ = D.stream_keys(0, 1)
  assert not np.array_equal(
    np.asarray(D.epoch_order(k0, 3, 50)), np.asarray(D.epoch_order(k1, 3, 50))
  )


def test_stream_position_does_not_overflow_int32():
  for step, batch, n in [(2**30, 1000, 50_000), (123_456_789, 4096, 60_000), (7, 64, 1437)]:
    epoch, offset = D.stream_position(jnp.int32(step), batch, n)
    assert (int(epoch), int(offset)) == divmod(step * batch, n)


def test_check_stream_errors():
  with pytest.raises(ValueError, match="exceeds the 10 examples"):
    D.check_stream(10, 11)
  with pytest.raises(ValueError, match="overflows"):
    D.check_stream(2**20, 2**11)
  with pytest.raises(ValueError, match="unknown augmentation 'crops'"):
    D.check_preset("crops")


def _replayed(seed, draws):
  """The values np.random.default_rng(seed) gives for `draws` ((low, high) or 'random')."""
  rng = np.random.default_rng(seed)
  return [rng.random() if d == "random" else int(rng.integers(*d)) for d in draws]


def test_device_pad_and_crop_and_flip_equal_the_host_for_the_same_offsets():
  image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
  for seed in range(12):
    host = H.host_random_flip(np.random.default_rng(seed), image)
    top, left = _replayed(seed, [(0, 9), (0, 9)])
    host_crop = H.host_pad_and_crop(np.random.default_rng(seed), image, 4)
    np.testing.assert_array_equal(np.asarray(A.pad_and_crop_at(image, top, left, 4)), host_crop)
    flip = _replayed(seed, ["random"])[0] < 0.5
    device = A.flip_left_right(image) if flip else image
    np.testing.assert_array_equal(np.asarray(device), host)


def test_device_segmentation_pair_equals_the_host_for_the_same_offsets():
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
  mask = rng.integers(0, 3, (12, 10), dtype=np.uint8)
  for seed in range(8):
    host_image, host_mask = H.host_pad_and_crop(
      np.random.default_rng(seed), image, 8, mask, other_fill=D.SEGMENTATION_MASK_FILL
    )
    top, left = _replayed(seed, [(0, 17), (0, 17)])
    np.testing.assert_array_equal(np.asarray(A.pad_and_crop_at(image, top, left, 8)), host_image)
    np.testing.assert_array_equal(
      np.asarray(A.pad_and_crop_at(mask, top, left, 8, D.SEGMENTATION_MASK_FILL)), host_mask
    )
  # the random pair moves image and mask together and pads the mask with the background class
  key = jax.random.PRNGKey(3)
  ones = np.ones((6, 6, 1), np.uint8)
  img, msk = D.geometric("segmentation", key, ones, np.zeros((6, 6), np.uint8))
  np.testing.assert_array_equal(np.asarray(img)[..., 0] == 0, np.asarray(msk) == 1)


def test_device_alexnet_crop_and_colour_equal_the_host_formula():
  rows, cols = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
  image = np.stack([rows, cols, (rows + cols) % 256], -1).astype(np.uint8)
  for seed in range(4):
    host = H.host_random_crop(np.random.default_rng(seed), image, 224)
    top, left = _replayed(seed, [(0, 33), (0, 33)])
    np.testing.assert_array_equal(np.asarray(A.crop(image, top, left, 224)), host)
  values = np.array([0.01, 0.02, 0.2], np.float32)
  vectors = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0].astype(np.float32)
  key = jax.random.PRNGKey(5)
  x = np.full((4, 4, 3), 0.5, np.float32)
  shifted = np.asarray(D.colour("alexnet", key, x, values, vectors))
  alpha = np.asarray(D.PCA_STD * jax.random.normal(jax.random.fold_in(key, 2), (3,)))
  np.testing.assert_allclose(shifted, x + vectors @ (alpha * values), rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(D.colour("crop_flip", key, x, values, vectors)), x)


def test_to_float_equals_the_host_collate():
  rng = np.random.default_rng(2)
  images = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
  mean, std = np.array([0.4, 0.5, 0.6], np.float32), np.array([0.2, 0.25, 0.3], np.float32)
  examples = [{"image": im, "label": np.int32(0)} for im in images]
  host = pipeline._collate(examples, mean, std)["image"]
  np.testing.assert_allclose(np.asarray(D.to_float(images, mean, std)), host, rtol=1e-6, atol=1e-6)
  floats = rng.random((2, 3), dtype=np.float32)
  np.testing.assert_array_equal(np.asarray(D.to_float(floats)), floats)


def test_prepare_presets_shapes_and_dtypes():
  rng = np.random.default_rng(0)
  keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(4))
  images = rng.integers(0, 256, (4, 256, 256, 3), dtype=np.uint8)
  labels = np.arange(4, dtype=np.int32)
  stats = dict(
    mean=np.full(3, 0.5, np.float32),
    std=np.full(3, 0.25, np.float32),
    eigenvalues=np.ones(3, np.float32),
    eigenvectors=np.eye(3, dtype=np.float32),
  )
  batch = D.prepare("alexnet", keys, images, labels, **stats)
  assert batch["image"].shape == (4, 224, 224, 3) and batch["image"].dtype == jnp.float32
  assert batch["label"].dtype == jnp.int32
  small = images[:, :32, :32]
  for preset in ("none", "flip", "crop_flip"):
    out = D.prepare(preset, keys, small, labels)
    assert out["image"].shape == (4, 32, 32, 3)
    assert float(out["image"].max()) <= 1.0
  masks = rng.integers(0, 3, (4, 32, 32), dtype=np.uint8)
  out = D.prepare("segmentation", keys, small, masks)
  assert out["label"].shape == (4, 32, 32) and out["label"].dtype == jnp.int32
  custom = D.prepare(lambda k, x, y: (x * 0 + 1, y + 1), keys, small, labels)
  np.testing.assert_array_equal(np.asarray(custom["label"]), labels + 1)


def test_eval_batch_masks_and_pads_like_the_host_pipeline():
  images = np.arange(10 * 2 * 2 * 1, dtype=np.uint8).reshape(10, 2, 2, 1)
  labels = np.arange(10, dtype=np.int32)
  batch = D.eval_batch(images, labels, 8, jnp.arange(4), 10)
  np.testing.assert_array_equal(np.asarray(batch["mask"]), [1, 1, 0, 0])
  np.testing.assert_array_equal(np.asarray(batch["label"]), [8, 9, 0, 0])
  crop = D.eval_batch(
    np.zeros((3, 256, 256, 3), np.uint8), labels[:3], 0, jnp.arange(3), 3, crop=224
  )
  assert crop["image"].shape == (3, 224, 224, 3)
