"""scikit-learn's digits as a TFDS dataset, built locally on first use.

The 1,797 real 8x8 handwritten digits ship with scikit-learn, so this dataset needs no download.
It is registered with TFDS as ``sklearn_digits`` and stored as ``array_record`` files, so it is
read through the same ``tfds.data_source`` path as every other dataset.

Pixels: scikit-learn stores integers v in [0, 16]; the TFDS image stores
``uint8 = round(v * 255 / 16)`` (shape (8, 8, 1)), so dividing by 255 gives v / 16 up to rounding.
The images are stored raw (a uint8 ``Tensor`` feature, 64 bytes each), not as PNG: reading a
record decodes nothing (version 1.0.0 stored PNGs, which cost a PIL decode per 8x8 image).

Splits: a fixed stratified split (``sklearn.model_selection.train_test_split`` with
``test_size=0.2``, ``random_state=0``, ``stratify=target``): 1,437 train, 360 test images. TFDS
stores each split in its own fixed order (hashed from the scikit-learn index).
"""

import fcntl
import os

import numpy as np
import tensorflow_datasets as tfds

TFDS_NAME = "sklearn_digits"
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def split_indices() -> dict[str, np.ndarray]:
  """The fixed stratified split: {'train': indices (1437,), 'test': indices (360,)}."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  target = load_digits().target
  train, test = train_test_split(
    np.arange(len(target)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=target
  )
  return {"train": np.sort(train), "test": np.sort(test)}


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8x8 digits (UCI optdigits test set), 10 classes."""

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {
    "1.0.0": "Stratified 80/20 split with random_state=0.",
    "2.0.0": "Images stored as raw uint8 tensors instead of PNG (same pixels, same split).",
  }

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="scikit-learn's load_digits(): 1,797 real 8x8 grey images of digits 0-9.",
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.uint8),
          "label": tfds.features.ClassLabel(num_classes=10),
        }
      ),
      supervised_keys=("image", "label"),
      homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the data ship with scikit-learn.
    indices = split_indices()
    return {split: self._generate_examples(idx) for split, idx in indices.items()}

  def _generate_examples(self, indices):
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    for i in indices:
      yield int(i), {"image": pixels[i][..., None], "label": int(digits.target[i])}


def ensure_built(data_dir: str) -> tfds.core.DatasetBuilder:
  """Builds the dataset into ``data_dir`` once, safely under concurrent processes.

  A file lock (``<data_dir>/sklearn_digits.lock``) serializes builders: the first process builds,
  the others wait and then find the prepared dataset. TFDS itself writes into a temporary folder
  and renames it, so readers never see a half-written dataset.
  """
  os.makedirs(data_dir, exist_ok=True)
  builder = SklearnDigits(data_dir=data_dir, file_format="array_record")
  if builder.is_prepared():
    return builder
  with open(os.path.join(data_dir, f"{TFDS_NAME}.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      builder = SklearnDigits(data_dir=data_dir, file_format="array_record")
      if not builder.is_prepared():
        builder.download_and_prepare()
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
  return builder
