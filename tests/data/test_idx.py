"""The IDX reader on written files, and on the real Fashion-MNIST of dataset-fashion-mnist."""

import gzip
import os
import struct
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import research.data as rd
from research.data import idx

FASHION = rd.spec("fashion_mnist_idx").source.directory


def _idx_bytes(array: np.ndarray) -> bytes:
  code = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}[array.dtype.type]
  header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
  return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_dataset(directory, compress: bool, n_train=30, n_test=7, seed=0):
  rng = np.random.default_rng(seed)
  arrays = {
    "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 5, 4), dtype=np.uint8),
    "train-labels-idx1-ubyte": rng.integers(0, 3, n_train, dtype=np.uint8),
    "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 5, 4), dtype=np.uint8),
    "t10k-labels-idx1-ubyte": rng.integers(0, 3, n_test, dtype=np.uint8),
  }
  for filename, array in arrays.items():
    if compress:
      with gzip.open(os.path.join(directory, filename + ".gz"), "wb") as f:
        f.write(_idx_bytes(array))
    else:
      with open(os.path.join(directory, filename), "wb") as f:
        f.write(_idx_bytes(array))
  return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_idx_directory_round_trip(tmp_path, compress):
  arrays = _write_dataset(tmp_path, compress)
  name = f"idx:{tmp_path}"
  info = rd.get_info(name)
  assert info == rd.DatasetInfo(name, 3, (5, 4, 1), {"train": 30, "test": 7}, "classification")
  images, labels = rd.load_arrays(name, "test")
  np.testing.assert_array_equal(images[..., 0] * 255, arrays["t10k-images-idx3-ubyte"])
  np.testing.assert_array_equal(labels, arrays["t10k-labels-idx1-ubyte"])
  batches = list(rd.create_iterator(name, "test", global_batch_size=4, seed=0, train=False))
  np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches])[:7], labels)


def test_parse_idx_other_dtypes_and_bad_files():
  values = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
  np.testing.assert_array_equal(idx.parse_idx(_idx_bytes(values)), values)
  with pytest.raises(ValueError, match="Not an IDX file"):
    idx.parse_idx(b"\x1f\x8b\x08\x00rest")
  with pytest.raises(ValueError, match="implies"):
    idx.parse_idx(_idx_bytes(values)[:-1])


def test_missing_idx_files_name_the_directory(tmp_path):
  with pytest.raises(rd.DatasetNotFoundError, match=str(tmp_path)):
    rd.get_info(f"idx:{tmp_path}")


def _fashion_present() -> bool:
  present = os.path.exists(os.path.join(FASHION, "train-labels-idx1-ubyte.gz"))
  if not present and os.environ.get("CI"):
    pytest.fail(f"CI is set but {FASHION} is missing: apt-get install dataset-fashion-mnist")
  if not present:
    pytest.skip(f"{FASHION} absent (Debian package dataset-fashion-mnist); CI must install it")
  return present


def test_real_fashion_mnist_trains_a_linear_classifier():
  _fashion_present()
  info = rd.get_info("fashion_mnist_idx")
  assert info.num_examples == {"train": 60_000, "test": 10_000}
  assert info.image_shape == (28, 28, 1) and info.num_classes == 10
  _, train_labels = rd.load_arrays("fashion_mnist_idx", "train")
  np.testing.assert_array_equal(train_labels[:10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5])
  np.testing.assert_array_equal(np.bincount(train_labels), [6000] * 10)

  def loss(params, batch):
    logits = batch["image"].reshape(len(batch["image"]), -1) @ params["w"] + params["b"]
    log_p = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(log_p, batch["label"][:, None], axis=1).mean()

  @jax.jit
  def step(params, batch):
    grads = jax.grad(loss)(params, batch)
    return jax.tree.map(lambda p, g: p - 0.05 * g, params, grads)

  params = {"w": jnp.zeros((784, 10)), "b": jnp.zeros(10)}
  train = rd.create_iterator(
    "fashion_mnist_idx", "train", global_batch_size=256, seed=0, train=True, standardize=True
  )
  for _ in range(200):
    params = step(params, next(train))
  correct = total = 0
  test = rd.create_iterator(
    "fashion_mnist_idx", "test", global_batch_size=1000, seed=0, train=False, standardize=True
  )
  for batch in test:
    logits = batch["image"].reshape(len(batch["image"]), -1) @ params["w"] + params["b"]
    correct += float(((logits.argmax(-1) == batch["label"]) * batch["mask"]).sum())
    total += float(batch["mask"].sum())
  assert total == 10_000
  assert correct / total > 0.78  # 200 steps of batch 256 reach about 0.81 (0.84 when converged)


def test_fashion_check_skips_locally_and_fails_in_ci(monkeypatch, tmp_path):
  monkeypatch.setattr(sys.modules[__name__], "FASHION", str(tmp_path))
  monkeypatch.delenv("CI", raising=False)
  with pytest.raises(pytest.skip.Exception, match="dataset-fashion-mnist"):
    _fashion_present()
  monkeypatch.setenv("CI", "true")
  with pytest.raises(pytest.fail.Exception, match="apt-get install dataset-fashion-mnist"):
    _fashion_present()


def _truncate(path, keep_fraction):
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.truncate(int(size * keep_fraction))


@pytest.mark.parametrize("compress", [False, True])
def test_a_truncated_file_is_named_as_damaged(tmp_path, compress):
  """A short gzip stream (EOFError inside gzip) and a short raw file alike: one
  MalformedDatasetError naming the file and the fix."""
  _write_dataset(tmp_path, compress)
  path = str(tmp_path / ("train-images-idx3-ubyte" + (".gz" if compress else "")))
  _truncate(path, 0.5)
  with pytest.raises(rd.MalformedDatasetError) as info:
    rd.get_info(f"idx:{tmp_path}")
  message = str(info.value)
  assert path in message and "truncated or damaged" in message and "re-extract" in message
  assert isinstance(info.value, ValueError)


def test_a_file_shorter_than_its_header_is_damaged():
  with pytest.raises(rd.MalformedDatasetError, match="fewer than its header"):
    idx.parse_idx(bytes([0, 0, 0x08, 3, 0, 0]))


@pytest.mark.parametrize("bad", [200, -1])
def test_labels_outside_the_classes_are_refused(tmp_path, bad):
  labels = np.arange(30) % 3
  labels[7] = bad
  rng = np.random.default_rng(0)
  idx.write_split_dir(
    str(tmp_path),
    {
      "train": (rng.integers(0, 256, (30, 5, 4), dtype=np.uint8), labels),
      "test": (rng.integers(0, 256, (7, 5, 4), dtype=np.uint8), np.arange(7) % 3),
    },
  )
  with pytest.raises(rd.MalformedDatasetError) as info:
    rd.get_info(f"idx:{tmp_path}")
  assert f"split 'train' has label {bad}, outside [0, " in str(info.value)
  if bad == 200:  # no example has label 3: the classes are 0..2
    assert "outside [0, 3)" in str(info.value)


def test_labels_past_a_known_number_of_classes_are_refused():
  images = np.zeros((8, 4, 4, 1), np.uint8)
  name = rd.register_arrays(
    "labels_past_num_classes", {"train": (images, np.arange(8) % 4)}, num_classes=3
  )
  with pytest.raises(
    rd.MalformedDatasetError, match=r"split 'train' has label 3, outside \[0, 3\)"
  ):
    rd.load_arrays(name, "train")


def test_registered_arrays_may_leave_classes_out():
  """Fine-tuning on classes 5..9 of 10 keeps the 10 classes: only IDX files must use them all."""
  images = np.zeros((10, 4, 4, 1), np.uint8)
  name = rd.register_arrays("classes_5_to_9", {"train": (images, 5 + np.arange(10) % 5)})
  assert rd.get_info(name).num_classes == 10
