"""Batch size checks, device sharding, per-process shares and prefetching to devices."""

import numpy as np
import pytest

import research.data as rd


def test_check_batch_size_names_the_numbers_and_the_fix():
  assert rd.check_batch_size(128, 8) == 16
  assert rd.check_batch_size(128, 8, process_count=2) == 8
  with pytest.raises(ValueError, match=r"global_batch_size=100 .* 8 local device.*multiple of 8"):
    rd.check_batch_size(100, 8)
  with pytest.raises(ValueError, match=r"2 process\(es\) x 8 .* = 16; use a multiple of 16"):
    rd.check_batch_size(136, 8, process_count=2)


def _labels_and_images(iterator, steps):
  return [next(iterator) for _ in range(steps)]


def test_each_process_reads_its_own_share():
  train_images, _ = rd.load_arrays("digits", "train")
  per_process = []
  for index in range(3):
    it = rd.create_iterator(
      "digits",
      "train",
      global_batch_size=3,
      seed=0,
      train=True,
      process_index=index,
      process_count=3,
    )
    batches = _labels_and_images(it, 1437 // 3)  # one epoch of this process's share
    images = np.concatenate([b["image"] for b in batches])
    assert images.shape[0] == 1437 // 3
    per_process.append({im.tobytes() for im in images})
  # Contiguous, disjoint shares of the split (a remainder of len % 3 would be dropped).
  assert all(len(a & b) == 0 for i, a in enumerate(per_process) for b in per_process[i + 1 :])
  share = {im.tobytes() for im in train_images[: 1437 // 3]}
  assert per_process[0] == share


def test_eval_shares_cover_the_split_once_with_equal_batch_counts():
  _, labels = rd.load_arrays("digits", "test")
  seen, lengths = [], []
  for index in range(3):
    it = rd.create_iterator(
      "digits",
      "test",
      global_batch_size=48,
      seed=0,
      train=False,
      process_index=index,
      process_count=3,
    )
    batches = list(it)
    lengths.append(len(batches))
    for b in batches:
      seen.append(b["label"][b["mask"] == 1])
  assert len(set(lengths)) == 1
  np.testing.assert_array_equal(np.concatenate(seen), labels)


def test_batch_larger_than_a_share_is_refused():
  with pytest.raises(ValueError, match="use global_batch_size <= 1437"):
    rd.create_iterator("digits", "train", global_batch_size=2000, seed=0, train=True)
