"""Train, validation, test: the validation set never overlaps the records trained on.

The records of a registered dataset carry their own index in two pixels (index // 256,
index % 256), so what the run's inputs serve can be read back and compared with the split's
indices, on 1 and 8 devices, from device memory and through the grain pipeline.
"""

import numpy as np
import pytest

from research import data
from research.errors import ConfigError
from research.train import inputs, loop
from tests.train import helpers

NUM_TRAIN, NUM_TEST, HELD_OUT, BATCH = 200, 40, 40, 16  # 160 train = 10 batches: one epoch


def _indexed(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
  index = np.arange(offset, offset + n)
  images = np.zeros((n, 4, 4, 1), np.uint8)
  images[:, 0, 0, 0], images[:, 0, 1, 0] = index // 256, index % 256
  return images, (index % 10).astype(np.int32)


def _decode(images) -> np.ndarray:
  """The record indices of images as served: uint8 records or float32 batches in [0, 1]."""
  pixels = np.asarray(images, np.float64)
  if pixels.max() <= 1.0:
    pixels = pixels * 255.0
  pixels = np.round(pixels).astype(np.int64)
  return pixels[:, 0, 0, 0] * 256 + pixels[:, 0, 1, 0]


@pytest.fixture(scope="module")
def indexed_dataset():
  return data.register_arrays(
    "indexed_records",
    {"train": _indexed(NUM_TRAIN), "test": _indexed(NUM_TEST, offset=1000)},
    num_classes=10,
  )


def _config(name, num_devices, in_memory):
  return helpers.tiny_config(
    num_devices=num_devices,
    batch_size=BATCH,
    eval_batch_size=BATCH,
    **{"dataset.name": name, "dataset.validation": HELD_OUT, "dataset.in_memory": in_memory},
  )


def _served_training_records(config, mesh, plan) -> np.ndarray:
  train_input = inputs.TrainInput(config, plan, mesh)
  if plan.in_memory:
    return _decode(train_input.split.images.addressable_shards[0].data)
  epoch = plan.split.size // config.batch_size
  return np.concatenate([_decode(next(train_input.iterator)["image"]) for _ in range(epoch)])


@pytest.mark.parametrize("num_devices", [1, 8])
@pytest.mark.parametrize("in_memory", ["true", "false"])
def test_no_training_record_is_in_the_validation_set(indexed_dataset, num_devices, in_memory):
  config = _config(indexed_dataset, num_devices, in_memory)
  info, mesh, splits, plans = loop.plan_inputs(config)
  assert mesh.size == num_devices and plans.train.in_memory == (in_memory == "true")
  assert splits.counts() == {"train": NUM_TRAIN - HELD_OUT, "validation": HELD_OUT, "test": 40}
  trained = _served_training_records(config, mesh, plans.train)
  validation = set(splits.validation.indices.tolist())
  # One epoch serves every training record once, and none of the validation records.
  assert sorted(trained.tolist()) == splits.train.indices.tolist()
  assert validation.isdisjoint(trained.tolist())
  assert validation | set(trained.tolist()) == set(range(NUM_TRAIN))
  # What the validation and test evaluations read: exactly their records.
  for split in (splits.validation, splits.test):
    images, _ = data.load_split(indexed_dataset, split)
    expected = np.arange(1000, 1040) if split.name == "test" else splits.validation.indices
    np.testing.assert_array_equal(_decode(images), expected)


def test_processes_share_the_training_records_and_never_the_validation_set(indexed_dataset):
  splits = data.run_splits(indexed_dataset, HELD_OUT)
  served = []
  for index in range(2):  # the host pipeline of each of two processes
    iterator = data.create_iterator(
      indexed_dataset,
      splits.train,
      global_batch_size=BATCH,
      seed=0,
      train=True,
      process_index=index,
      process_count=2,
    )
    batches = splits.train.size // BATCH
    served.append(np.concatenate([_decode(next(iterator)["image"]) for _ in range(batches)]))
  assert set(served[0]).isdisjoint(served[1])
  assert sorted(np.concatenate(served).tolist()) == splits.train.indices.tolist()


def test_the_held_out_set_is_fixed_and_seed_independent():
  a = data.run_splits("digits")
  b = data.run_splits("digits", 0.2)
  np.testing.assert_array_equal(a.validation.indices, b.validation.indices)
  assert a.counts() == {"train": 1150, "validation": 287, "test": 360}
  assert a.train.key != data.run_splits("digits", 100).train.key  # a resumed run notices
  # Classes are all present in the held-out digits (a permutation, not a tail of the file).
  _, labels = data.load_split("digits", a.validation)
  assert np.bincount(labels, minlength=10).min() >= 20
  whole = data.run_splits("digits", 0)
  assert whole.validation is None and whole.train.size == 1437 and whole.train.indices is None


def test_a_dataset_with_its_own_validation_split_uses_it():
  name = data.register_arrays(
    "own_validation",
    {"train": _indexed(64), "validation": _indexed(16, 500), "test": _indexed(16, 1000)},
    num_classes=10,
  )
  splits = data.run_splits(name, 0.5)  # ignored: the dataset has a validation split
  assert splits.counts() == {"train": 64, "validation": 16, "test": 16}
  assert splits.validation.stored == "validation" and splits.train.indices is None


@pytest.mark.parametrize(
  "value, fragment",
  [
    (1437, "leaving none to train on"),
    (1.5, "must be a count"),
    (-3, "must be a count"),
    ("ten", "must be a count of training examples"),
  ],
)
def test_bad_validation_values_are_one_line(value, fragment):
  with pytest.raises(ConfigError, match=fragment) as caught:
    data.run_splits("digits", value)
  assert "dataset.validation" in str(caught.value) and "\n" not in str(caught.value)


def test_the_test_split_may_not_be_trained_on():
  with pytest.raises(ConfigError, match="test_split='train'"):
    data.run_splits("digits", test_split="train")


def test_early_stopping_without_a_validation_set_is_refused_before_compiling(tmp_path):
  config = helpers.tiny_config(**{"dataset.validation": 0, "early_stopping.patience": 2})
  with pytest.raises(ConfigError, match="early_stopping.patience=2 watch the validation set"):
    loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_without_a_validation_set_the_final_parameters_are_tested(tmp_path):
  config = helpers.tiny_config(**{"dataset.validation": 0})
  result = loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert result["num_examples"] == {"train": 1437, "validation": 0, "test": 360}
  assert result["best_step"] is None and result["test_step"] == result["step"] == 20
  assert result["test_accuracy"] == result["final_test_accuracy"]
  assert not any(k.startswith("validation_") for k in result)
