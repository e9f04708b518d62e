"""What a dataset is: one :class:`DatasetSpec` per name, and the front door that reads it.

Every dataset is read as a random-access source of records
``{'image': uint8 (H, W, C), 'label': int32 () or int32 (H, W)}`` (a ``grain.MapDataset``).
Everything the rest of the package asks about a dataset (its source, splits, shapes, task, the
test-time view, the default training augmentation, how to prepare it) is a field of its spec in
:data:`DATASETS`; nothing else switches on a dataset's name, and nothing switches on its kind:
``DatasetSpec.source`` is a source object (:mod:`research.data.sources`) that reads, decodes,
checks and summarizes its records:

* ``TfdsSource(tfds_name, decode)``: a prepared TFDS dataset, never downloaded here (a missing
  one raises :class:`DatasetNotFoundError` naming the dataset, the data directory and the
  command that prepares it); adding a TFDS classification dataset is one entry:
  ``tfds_classification("svhn_cropped", 10, (32, 32, 3))``. Decoders: :mod:`.decoders`.
* ``DigitsBuilder()``: scikit-learn's ``digits``, built locally on first use
  (:mod:`research.data.digits`).
* ``IdxDirectory(directory, directory_env)``: MNIST-format IDX files (:mod:`research.data.idx`):
  ``fashion_mnist_idx`` (``$RESEARCH_FASHION_MNIST_DIR``, by default the folder of Debian's
  ``dataset-fashion-mnist``) and any ``idx:<directory>``.
* ``InMemoryArrays``: NumPy arrays registered in this process with :func:`register_arrays`.

The data directory is ``data_dir`` if given, else ``$TFDS_DATA_DIR``, else
``~/tensorflow_datasets`` (TFDS's default).

Train, validation, test (:func:`run_splits`): a run trains on ``train``, chooses (evaluations,
early stopping, reduce on plateau, the best checkpoint, a sweep's best trial) on ``validation``
and reports ``test`` once. The validation set is the dataset's own where it has one
(``DatasetSpec.validation_split``), else a part of the stored training split held out once and
for all: ``DatasetSpec.validation`` examples (a count, or a fraction of the split) drawn by a
permutation with the fixed seed :data:`VALIDATION_SEED`, so it is the same for every run, seed,
device count and process count, and never overlaps the records trained on. ``validation=0``
trains on the whole training split and has no validation set.
"""

import dataclasses
import os
from typing import NamedTuple

import grain
import numpy as np

from research.data import decoders, sources
from research.data.decoders import (  # noqa: F401 (re-exported)
  IMAGENET_CROP,
  IMAGENET_RESIZE,
  PET_SIZE,
  classification_record,
)
from research.data.sources import Rows, check_labels, tfds_prepare  # noqa: F401 (re-exported)
from research.data.stats import (  # noqa: F401 (re-exported)
  STATS_MAX_EXAMPLES,
  ChannelStats,
  sample_images,
  stats_of_images,
)
from research.errors import ConfigError, DatasetNotFoundError, MalformedDatasetError  # noqa: F401

FASHION_MNIST_DIR_ENV = "RESEARCH_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
TASKS = ("classification", "segmentation")
VALIDATION_SEED = 0  # the permutation that picks held-out validation examples, for every run


class DatasetInfo(NamedTuple):
  """What a model and a loop need to know about a dataset."""

  name: str
  num_classes: int
  image_shape: tuple[int, int, int]  # (H, W, C) of the images the iterator yields
  num_examples: dict[str, int]  # split -> number of examples
  task: str  # "classification" or "segmentation"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Everything about one dataset.

  Attributes:
    name: the name configs use (``config.dataset.name``).
    source: where records come from and how they are read and decoded: a
      :class:`research.data.sources.Source` (``TfdsSource``, ``DigitsBuilder``,
      ``IdxDirectory``, ``InMemoryArrays``; module docstring).
    splits: the split names.
    task: "classification" (int32 labels) or "segmentation" (int32 (H, W) masks).
    num_classes: classes, or None to count them from the labels (IDX files, arrays).
    image_shape: (H, W, C) of the images batches hold, or None to read it from the records.
    stored_shape: (H, W, C) of the stored records where it differs from ``image_shape``
      (ImageNet's 256 x 256 records, cropped to 224 by the augmentation or ``eval_crop``).
    eval_crop: the side of the central crop that is the test-time view, or None (the record).
    test_split: the split reported once, at the end of a run (ImageNet: ``validation``, whose
      labels are public; its ``test`` labels are not).
    validation_split: the dataset's own validation split, or None to hold out ``validation``
      examples of the training split.
    validation: the held-out count (an int), or fraction of the training split (a float in
      (0, 1)), when the dataset has no validation split of its own; ``dataset.validation`` in
      a config overrides it.
    augmentation: the default training augmentation preset (``research.data.pipeline``).
    prepare: how to make the dataset present, shown when it is missing; ``{data_dir}`` and
      ``{directory}`` (IDX) are replaced by the data directory and the files' folder.
  """

  name: str
  source: sources.Source
  splits: tuple[str, ...] = ("train", "test")
  task: str = "classification"
  num_classes: int | None = None
  image_shape: tuple[int, int, int] | None = None
  stored_shape: tuple[int, int, int] | None = None
  eval_crop: int | None = None
  test_split: str = "test"
  validation_split: str | None = None
  validation: int | float = 0.1
  augmentation: str = "none"
  prepare: str = ""

  def check_split(self, split: str) -> None:
    """ConfigError naming the splits if ``split`` is not one of them."""
    if split not in self.splits:
      raise ConfigError(
        f"Dataset {self.name!r} has no split {split!r}; its splits are {list(self.splits)}."
      )

  def eval_view(self, image: np.ndarray) -> np.ndarray:
    """The test-time view of one record's image (H, W, C): its central ``eval_crop`` square."""
    if self.eval_crop is None:
      return image
    size = self.eval_crop
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


class Split(NamedTuple):
  """One split as a run reads it: the records ``indices`` (sorted) of the stored split
  ``stored``, or all of them when ``indices`` is None.

  ``name`` is what logs and metrics call it: 'train', 'validation' or 'test'.
  """

  name: str
  stored: str
  indices: np.ndarray | None
  size: int  # records in this split

  def rows(self, start: int = 0, stop: int | None = None) -> Rows:
    """Records ``start:stop`` of this split, as rows of the stored split."""
    if self.indices is None:
      return slice(start, stop)
    return self.indices[start:stop]

  @property
  def key(self) -> str:
    """Names the records (a resumed iterator must read the same ones): 'train:train:55000'."""
    return f"{self.name}:{self.stored}:{self.size}"

  def describe(self) -> str:
    """'validation (5,000 of train, held out)'; 'test (10,000 of test)'."""
    part = "" if self.indices is None else ", held out" if self.name == "validation" else ""
    return f"{self.name} ({self.size:,} of {self.stored}{part})"


class RunSplits(NamedTuple):
  """What a run trains on, chooses on (None: no validation set) and reports once."""

  train: Split
  validation: Split | None
  test: Split

  def counts(self) -> dict[str, int]:
    """{'train': n, 'validation': n (0 without one), 'test': n}."""
    return {
      "train": self.train.size,
      "validation": 0 if self.validation is None else self.validation.size,
      "test": self.test.size,
    }


def holdout_count(validation, num_train: int, where: str = "dataset.validation") -> int:
  """The number of training examples ``validation`` holds out: an int (or an integral float
  >= 1) is a count, a float in [0, 1) a fraction of ``num_train`` (rounded); 0, False or None
  hold out nothing. ConfigError naming ``where`` for a value that leaves no training example."""
  if validation is None or validation is False:
    return 0
  if isinstance(validation, bool) or not isinstance(validation, int | float):
    raise ConfigError(
      f"{where}={validation!r} must be a count of training examples (e.g. 5000), a fraction "
      "of them in [0, 1) (e.g. 0.1) or 0 for no validation set"
    )
  if validation == 0:
    return 0
  if isinstance(validation, float) and 0 < validation < 1:
    count = round(validation * num_train)
  elif validation >= 1 and float(validation).is_integer():
    count = int(validation)
  else:
    raise ConfigError(
      f"{where}={validation!r} must be a count (an integer >= 1) or a fraction in [0, 1)"
    )
  if count >= num_train:
    raise ConfigError(
      f"{where}={validation!r} holds out {count} of the {num_train} training examples, "
      f"leaving none to train on; use a count below {num_train} or a fraction below 1"
    )
  return count


def holdout(num_train: int, count: int) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, validation indices), both sorted, of a training split of ``num_train``
  records with ``count`` held out: a permutation with the fixed seed :data:`VALIDATION_SEED`,
  the same for every run, seed and device or process count."""
  order = np.random.default_rng(VALIDATION_SEED).permutation(num_train)
  return np.sort(order[count:]), np.sort(order[:count])


def run_splits(
  name: str,
  validation=None,
  data_dir: str | None = None,
  *,
  train_split: str = "train",
  test_split: str | None = None,
) -> RunSplits:
  """The train, validation and test splits of a run on ``name`` (module docstring).

  Args:
    validation: examples held out of ``train_split`` (a count or a fraction; 0: none); None
      takes the spec's ``validation``. Ignored when the dataset has a validation split.
    train_split, test_split: stored splits (default: 'train' and the spec's ``test_split``).

  Raises ConfigError for an unknown split, a test split that is the training split, or a
  ``validation`` that leaves nothing to train on.
  """
  found = spec(name)
  test_split = test_split or found.test_split
  for which, split in (("train_split", train_split), ("test_split", test_split)):
    if split not in found.splits:
      raise ConfigError(f"dataset.{which}={split!r}: {name} has splits {list(found.splits)}")
  if test_split in (train_split, found.validation_split):
    raise ConfigError(
      f"dataset.test_split={test_split!r} is also the split trained or validated on; the test "
      f"split must be kept apart: choose another of {list(found.splits)}"
    )
  num_train = len(open_source(name, train_split, data_dir))
  test = Split("test", test_split, None, len(open_source(name, test_split, data_dir)))
  if found.validation_split is not None:
    size = len(open_source(name, found.validation_split, data_dir))
    return RunSplits(
      Split("train", train_split, None, num_train),
      Split("validation", found.validation_split, None, size),
      test,
    )
  count = holdout_count(found.validation if validation is None else validation, num_train)
  if count == 0:
    return RunSplits(Split("train", train_split, None, num_train), None, test)
  train_rows, validation_rows = holdout(num_train, count)
  return RunSplits(
    Split("train", train_split, train_rows, len(train_rows)),
    Split("validation", train_split, validation_rows, count),
    test,
  )


def tfds_classification(
  tfds_name: str,
  num_classes: int,
  image_shape: tuple[int, int, int],
  *,
  decode=classification_record,
  **fields,
) -> DatasetSpec:
  """The spec of a TFDS image classification dataset stored as {'image', 'label'} records;
  ``decode`` maps a stored record to {'image': uint8 (H, W, C), 'label': int32}."""
  fields = {"prepare": tfds_prepare(tfds_name), **fields}
  return DatasetSpec(
    name=tfds_name,
    source=sources.TfdsSource(tfds_name, decode),
    num_classes=num_classes,
    image_shape=image_shape,
    **fields,
  )


DATASETS: dict[str, DatasetSpec] = {
  spec.name: spec
  for spec in (
    DatasetSpec(
      name="digits",
      source=sources.DigitsBuilder(),
      num_classes=10,
      image_shape=(8, 8, 1),
      validation=0.2,  # 287 of the 1,437 training digits; the test split holds 360
      prepare="nothing to do: it is built from scikit-learn into {data_dir} on first use",
    ),
    DatasetSpec(
      name="fashion_mnist_idx",
      source=sources.IdxDirectory(FASHION_MNIST_DEFAULT_DIR, directory_env=FASHION_MNIST_DIR_ENV),
      num_classes=10,
      image_shape=(28, 28, 1),
      validation=5000,  # 55,000 / 5,000, as for MNIST
      prepare=(
        "on Debian `apt-get install dataset-fashion-mnist`, or "
        + sources.IDX_PREPARE
        + f" (that folder is ${FASHION_MNIST_DIR_ENV}, else {FASHION_MNIST_DEFAULT_DIR})"
      ),
    ),
    tfds_classification("mnist", 10, (28, 28, 1), validation=5000),
    tfds_classification("fashion_mnist", 10, (28, 28, 1), validation=5000),
    # 45,000 / 5,000: the split of the ResNet paper's CIFAR-10 experiments
    tfds_classification("cifar10", 10, (32, 32, 3), augmentation="crop_flip", validation=5000),
    tfds_classification("cifar100", 100, (32, 32, 3), augmentation="crop_flip", validation=5000),
    tfds_classification(
      "imagenet2012",
      1000,
      (IMAGENET_CROP, IMAGENET_CROP, 3),
      decode=decoders.imagenet_record,
      splits=("train", "validation"),
      stored_shape=(IMAGENET_RESIZE, IMAGENET_RESIZE, 3),
      eval_crop=IMAGENET_CROP,
      test_split="validation",  # the 50,000 labelled validation images are the reported test
      validation=10_000,  # a "minival" held out of the 1.28M training images
      augmentation="alexnet",
      prepare=tfds_prepare("imagenet2012", manual=True),
    ),
    DatasetSpec(
      name="oxford_iiit_pet",
      source=sources.TfdsSource("oxford_iiit_pet", decoders.pet_record),
      task="segmentation",
      num_classes=3,
      image_shape=(PET_SIZE, PET_SIZE, 3),
      validation=0.1,  # 368 of the 3,680 training images
      augmentation="segmentation",
      prepare=tfds_prepare("oxford_iiit_pet"),
    ),
  )
}


def register(spec: DatasetSpec) -> DatasetSpec:
  """Adds ``spec`` to :data:`DATASETS` (a new name, or again an in-memory name); returns it."""
  if not isinstance(spec.source, sources.Source):
    raise ValueError(
      f"DatasetSpec.source={spec.source!r} must be a research.data.sources.Source: TfdsSource, "
      "DigitsBuilder, IdxDirectory or InMemoryArrays"
    )
  if spec.task not in TASKS:
    raise ValueError(f"DatasetSpec.task={spec.task!r} must be one of {TASKS}")
  old = DATASETS.get(spec.name)
  if old is not None and not (old.source.replaceable and spec.source.replaceable):
    raise ValueError(f"dataset {spec.name!r} is already defined; choose another name")
  DATASETS[spec.name] = spec
  return spec


def register_arrays(
  name: str,
  splits: dict[str, tuple[np.ndarray, np.ndarray]],
  *,
  task: str = "classification",
  num_classes: int | None = None,
  augmentation: str = "none",
) -> str:
  """Registers in-memory arrays as the dataset ``name`` of this process; returns ``name``.

  Args:
    splits: {split: (images, labels)}: images uint8 (N, H, W, C), or floats in [0, 1] (stored
      as ``round(255 x)``); labels int (N,), or (N, H, W) masks for segmentation.
    num_classes: default: the largest label + 1 over all splits.

  A training config then names it like any other dataset (``config.dataset.name = name``);
  registering the same name again replaces the arrays. A ``'validation'`` split is the
  dataset's validation set; without one, runs hold out a tenth of ``'train'``.
  """
  source = sources.InMemoryArrays.from_splits(name, splits)
  register(
    DatasetSpec(
      name=name,
      source=source,
      splits=tuple(source.splits),
      validation_split="validation" if "validation" in source.splits else None,
      task=task,
      num_classes=num_classes,
      augmentation=augmentation,
      prepare="call research.data.register_arrays in this process first",
    )
  )
  return name


def known_names() -> list[str]:
  return [*DATASETS, *sources.NAME_PATTERNS]


def spec(name: str) -> DatasetSpec:
  """The spec of ``name`` (``idx:<directory>`` makes one), its source resolved against the
  environment (``$RESEARCH_FASHION_MNIST_DIR``); ConfigError for an unknown name."""
  named = sources.parse_name(name)
  if named is not None:
    return DatasetSpec(name=name, source=named.source, prepare=named.prepare)
  if name not in DATASETS:
    raise ConfigError(f"Unknown dataset name {name!r}; known: {', '.join(known_names())}.")
  found = DATASETS[name]
  resolved = found.source.resolve()
  return found if resolved is found.source else dataclasses.replace(found, source=resolved)


def resolve_data_dir(data_dir: str | None = None) -> str:
  """``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  if data_dir:
    return os.fspath(data_dir)
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


# ----------------------------------------------------------------------------- all datasets


def open_source(name: str, split: str | Split, data_dir: str | None = None) -> grain.MapDataset:
  """A random-access dataset of records {'image': uint8 (H, W, C), 'label': int32}.

  ``split``: a stored split's name, or a :class:`Split` (its records only, in stored order).
  Records are at the spec's ``stored_shape`` (ImageNet's are 256 x 256; crops to 224 happen in
  the pipeline); pet records are PET_SIZE x PET_SIZE with an int32 (H, W) mask as label.
  """
  found = spec(name)
  stored = split.stored if isinstance(split, Split) else split
  found.check_split(stored)
  stored_records = found.source.records(found, stored, resolve_data_dir(data_dir))
  if not isinstance(split, Split) or split.indices is None:
    return stored_records
  indices = split.indices
  return grain.MapDataset.range(len(indices)).map(lambda i: stored_records[int(indices[i])])


def get_info(name: str, data_dir: str | None = None) -> DatasetInfo:
  """Number of classes, image shape (as the iterator yields it), split sizes and task."""
  found = spec(name)
  sizes = {split: len(open_source(name, split, data_dir)) for split in found.splits}
  num_classes, image_shape = found.source.info(found)
  return DatasetInfo(
    name=name,
    num_classes=num_classes,
    image_shape=tuple(image_shape),
    num_examples=sizes,
    task=found.task,
  )


def eval_crop(name: str) -> int | None:
  """The side of the central crop that is the test-time view of ``name``'s records, or None."""
  return spec(name).eval_crop


def eval_view(name: str, image: np.ndarray) -> np.ndarray:
  """The deterministic test-time view of one record's image (e.g. ImageNet's central 224)."""
  return spec(name).eval_view(image)


def record_shape(name: str, info: DatasetInfo) -> tuple[int, int, int]:
  """(H, W, C) of the stored records: the spec's ``stored_shape``, else the image shape."""
  return tuple(spec(name).stored_shape or info.image_shape)


def split_nbytes(name: str, info: DatasetInfo, num_examples: int) -> int:
  """Bytes of ``num_examples`` records as :func:`load_split` returns them (uint8 images)."""
  h, w, c = record_shape(name, info)
  label = h * w if info.task == "segmentation" else 4  # uint8 masks, int32 classes
  return num_examples * (h * w * c + label)


def load_split(
  name: str,
  split: str | Split,
  data_dir: str | None = None,
  start: int = 0,
  stop: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
  """Records ``start:stop`` of a split (a stored split's name or a :class:`Split`) in memory.

  Returns:
    images: uint8 (n, H, W, C) at :func:`record_shape` (ImageNet 256 x 256, pet PET_SIZE).
    labels: int32 (n,) for classification, uint8 (n, H, W) masks for segmentation.
  """
  found = spec(name)
  if not isinstance(split, Split):
    split = Split(split, split, None, -1)
  found.check_split(split.stored)
  return found.source.load(found, split.stored, resolve_data_dir(data_dir), split.rows(start, stop))


def load_arrays(name: str, split: str, data_dir: str | None = None):
  """A whole (small) split in memory, as floats.

  Returns:
    images: float32 (N, H, W, C) in [0, 1] (the test-time view, as in ``get_info``).
    labels: int32 (N,) for classification, int32 (N, H, W) for segmentation.
  """
  images, labels = load_split(name, split, data_dir)
  if eval_crop(name) is not None:
    images = np.stack([eval_view(name, image) for image in images])
  return images.astype(np.float32) / 255.0, labels.astype(np.int32)


def channel_stats(name: str, data_dir: str | None = None) -> ChannelStats:
  """Per-channel mean / std (and RGB eigenpairs) of the training split, computed once.

  Cached as JSON in ``<data dir>/research_stats/<name>.json`` (IDX directories: one file per
  directory; written atomically; not for in-memory arrays, which live only in this process).
  Uses every training image up to STATS_MAX_EXAMPLES, else that many evenly spaced ones.
  """
  found = spec(name)
  found.check_split("train")
  return found.source.channel_stats(found, resolve_data_dir(data_dir))
