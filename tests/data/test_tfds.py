"""Every TFDS name through the real tfds data-source path, with tfds.testing.mock_data.

mock_data replaces the records (and patches ``as_data_source``) but not the files on disk, so
these tests also declare the mocked datasets prepared; the missing-data test uses real, empty
directories.
"""

import time
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

import research.data as rd
from research.data import sources

# Every TFDS dataset of research.data: a new spec is tested here without editing this file.
NAMES = [name for name, spec in rd.DATASETS.items() if isinstance(spec.source, sources.TfdsSource)]


@pytest.fixture
def mocked():
  with (
    tfds.testing.mock_data(num_examples=12),
    mock.patch.object(tfds.core.DatasetBuilder, "is_prepared", return_value=True),
  ):
    yield


@pytest.mark.parametrize("name", NAMES)
def test_each_name_yields_batches_of_its_info(name, mocked, tmp_path):
  info = rd.get_info(name, data_dir=tmp_path)
  test_split = rd.spec(name).splits[1]
  assert info.num_examples == {"train": 12, test_split: 12}
  train = rd.create_iterator(
    name, "train", global_batch_size=4, seed=0, train=True, data_dir=tmp_path
  )
  batch = next(train)
  assert batch["image"].shape == (4, *info.image_shape) and batch["image"].dtype == np.float32
  label_shape = (4, *info.image_shape[:2]) if info.task == "segmentation" else (4,)
  assert batch["label"].shape == label_shape and batch["label"].dtype == np.int32
  assert 0 <= batch["label"].min() and batch["label"].max() < info.num_classes
  evaluation = rd.create_iterator(
    name, test_split, global_batch_size=5, seed=0, train=False, data_dir=tmp_path
  )
  batches = list(evaluation)
  assert len(batches) == 3 and sum(b["mask"].sum() for b in batches) == 12
  images = np.concatenate([b["image"] for b in batches])
  assert images.shape == (15, *info.image_shape) and 0.0 <= images.min() <= images.max() <= 1.0


def test_standardized_batches_use_the_cached_training_statistics(mocked, tmp_path):
  stats = rd.channel_stats("cifar10", data_dir=tmp_path)
  assert stats.mean.shape == stats.std.shape == stats.eigenvalues.shape == (3,)
  assert (tmp_path / "research_stats" / "cifar10.json").exists()
  images, _ = rd.load_arrays("cifar10", "train", data_dir=tmp_path)
  np.testing.assert_allclose(stats.mean, images.mean((0, 1, 2)), rtol=1e-4)
  it = rd.create_iterator(
    "cifar10",
    "test",
    global_batch_size=12,
    seed=0,
    train=False,
    data_dir=tmp_path,
    standardize=True,
  )
  test_images, _ = rd.load_arrays("cifar10", "test", data_dir=tmp_path)
  np.testing.assert_allclose(next(it)["image"], (test_images - stats.mean) / stats.std, atol=1e-5)


def test_mock_cifar_resumes_exactly_with_augmentation(mocked, tmp_path):
  make = lambda: rd.create_iterator(
    "cifar10", "train", global_batch_size=5, seed=7, train=True, data_dir=tmp_path
  )
  reference = list(zip(range(8), make(), strict=False))
  it = make()
  for _ in range(3):  # 12 // 5: the epoch ends inside batch 2
    next(it)
  resumed = make()
  resumed.set_state(it.get_state())
  for (_, expected), actual in zip(reference[3:], resumed, strict=False):
    np.testing.assert_array_equal(expected["image"], actual["image"])


@pytest.mark.parametrize("name", NAMES)
def test_missing_dataset_fails_at_once_with_the_fix(name, tmp_path):
  start = time.monotonic()
  with pytest.raises(rd.DatasetNotFoundError) as error:
    rd.get_info(name, data_dir=tmp_path)
  message = str(error.value)
  assert name in message and str(tmp_path) in message and "tfds build" in message
  if name == "imagenet2012":
    assert "downloads/manual" in message
  with pytest.raises(rd.DatasetNotFoundError):
    rd.create_iterator(name, "train", global_batch_size=8, seed=0, train=True, data_dir=tmp_path)
  assert time.monotonic() - start < 30  # no download attempt, no retry loop


def test_unknown_name_and_split_are_refused():
  with pytest.raises(ValueError, match="known: digits"):
    rd.get_info("cifar11")
  with pytest.raises(ValueError, match="splits are"):
    rd.open_source("digits", "validation")


def test_tfds_data_dir_environment_variable_is_the_default(monkeypatch, tmp_path):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  assert rd.resolve_data_dir() == str(tmp_path)
  assert rd.resolve_data_dir("/elsewhere") == "/elsewhere"
  with pytest.raises(rd.DatasetNotFoundError, match=str(tmp_path)):
    rd.get_info("mnist")
