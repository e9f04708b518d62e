"""The digits dataset end to end: local TFDS build, info, arrays, statistics, iterators."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import research.data as rd
from research.data.digits import SklearnDigits


def test_info_and_arrays_match_scikit_learn():
  from sklearn.datasets import load_digits

  info = rd.get_info("digits")
  assert info == rd.DatasetInfo(
    "digits", 10, (8, 8, 1), {"train": 1437, "test": 360}, "classification"
  )
  train_x, train_y = rd.load_arrays("digits", "train")
  test_x, test_y = rd.load_arrays("digits", "test")
  assert train_x.shape == (1437, 8, 8, 1) and train_x.dtype == np.float32
  assert train_y.dtype == np.int32 and test_y.shape == (360,)
  assert 0.0 <= train_x.min() and train_x.max() <= 1.0
  # Every stored image is one of scikit-learn's, with its label, up to the uint8 rounding.
  digits = load_digits()
  reference = digits.images.reshape(len(digits.images), -1) / 16.0
  images = np.concatenate([train_x, test_x]).reshape(1797, -1)
  distances = ((images[:, None, :] - reference[None, :, :]) ** 2).sum(-1)
  nearest = distances.argmin(axis=1)
  assert distances.min(axis=1).max() < 64 * (0.5 / 255) ** 2 + 1e-9
  assert sorted(nearest) == list(range(1797))
  np.testing.assert_array_equal(np.concatenate([train_y, test_y]), digits.target[nearest])
  # The split is stratified: each class has about 20% of its images in test.
  counts = np.bincount(test_y, minlength=10) / np.bincount(digits.target, minlength=10)
  assert np.all(np.abs(counts - 0.2) < 0.02)


def test_reading_does_not_import_tensorflow():
  rd.get_info("digits")  # built in this process if needed
  code = (
    "import sys, research.data as rd; rd.load_arrays('digits', 'test'); "
    "print('tensorflow' in sys.modules)"
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_channel_stats_are_the_training_pixels_statistics(tmp_path):
  images, _ = rd.load_arrays("digits", "train")
  stats = rd.channel_stats("digits")
  np.testing.assert_allclose(stats.mean, images.reshape(-1, 1).mean(0), rtol=1e-5)
  np.testing.assert_allclose(stats.std, images.reshape(-1, 1).std(0, ddof=1), rtol=1e-4)
  again = rd.channel_stats("digits")  # read from the JSON cache
  np.testing.assert_array_equal(again.mean, stats.mean)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_training_iterator_is_deterministic_and_resumes_exactly():
  make = lambda seed: rd.create_iterator(
    "digits", "train", global_batch_size=100, seed=seed, train=True
  )
  # 1437 // 100: the epoch boundary falls inside batch 14; run past it.
  reference = _take(make(0), 20)
  again = _take(make(0), 20)
  other = _take(make(1), 1)
  for a, b in zip(reference, again, strict=True):
    np.testing.assert_array_equal(a["image"], b["image"])
  assert not np.array_equal(reference[0]["image"], other[0]["image"])
  for stop in (5, 14, 15):  # mid-epoch, the straddling batch, after the boundary
    it = make(0)
    _take(it, stop)
    state = json.loads(json.dumps(it.get_state()))
    resumed = make(0)
    resumed.set_state(state)
    for a, b in zip(reference[stop:], _take(resumed, 20 - stop), strict=True):
      np.testing.assert_array_equal(a["image"], b["image"])
      np.testing.assert_array_equal(a["label"], b["label"])


def test_each_epoch_is_a_new_permutation_of_the_training_split():
  labels = rd.load_arrays("digits", "train")[1]
  it = rd.create_iterator("digits", "train", global_batch_size=479, seed=3, train=True)
  epochs = [np.concatenate([next(it)["label"] for _ in range(3)]) for _ in range(2)]
  for epoch in epochs:
    np.testing.assert_array_equal(
      np.bincount(epoch, minlength=10), np.bincount(labels, minlength=10)
    )
  assert not np.array_equal(epochs[0], epochs[1])


def test_eval_iterator_is_one_ordered_padded_pass():
  images, labels = rd.load_arrays("digits", "test")
  it = rd.create_iterator("digits", "test", global_batch_size=64, seed=0, train=False)
  batches = list(it)
  assert len(batches) == len(it) == 6
  mask = np.concatenate([b["mask"] for b in batches])
  assert mask.sum() == 360 and mask[:360].all()
  np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches])[:360], labels)
  np.testing.assert_allclose(np.concatenate([b["image"] for b in batches])[:360], images)


def test_set_state_rejects_another_configuration():
  it = rd.create_iterator("digits", "train", global_batch_size=32, seed=0, train=True)
  state = it.get_state()
  other = rd.create_iterator("digits", "train", global_batch_size=32, seed=1, train=True)
  with pytest.raises(ValueError, match="seed=0"):
    other.set_state(state)


def test_concurrent_first_builds_are_safe(tmp_path):
  code = (
    "import sys, research.data as rd; "
    "print(rd.get_info('digits', data_dir=sys.argv[1]).num_examples['train'])"
  )
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  processes = [
    subprocess.Popen(
      [sys.executable, "-c", code, str(tmp_path)],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      env=env,
    )
    for _ in range(2)
  ]
  outputs = [p.communicate(timeout=300) for p in processes]
  for process, (out, err) in zip(processes, outputs, strict=True):
    assert process.returncode == 0, err[-2000:]
    assert out.strip().splitlines()[-1] == "1437"
  # The lock let exactly one of them build; the other waited and reused the result.
  assert sum("Downloading and preparing" in out for out, _ in outputs) == 1
  assert [p.name for p in (tmp_path / "sklearn_digits").iterdir()] == [str(SklearnDigits.VERSION)]
