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
from research.data.sources import check_labels, tfds_prepare  # noqa: F401 (re-exported)
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
      prepare="nothing to do: it is built from scikit-learn into {data_dir} on first use",
    ),
    DatasetSpec(
      name="fashion_mnist_idx",
      source=sources.IdxDirectory(FASHION_MNIST_DEFAULT_DIR, directory_env=FASHION_MNIST_DIR_ENV),
      num_classes=10,
      image_shape=(28, 28, 1),
      prepare=(
        "on Debian `apt-get install dataset-fashion-mnist`, or "
        + sources.IDX_PREPARE
        + f" (that folder is ${FASHION_MNIST_DIR_ENV}, else {FASHION_MNIST_DEFAULT_DIR})"
      ),
    ),
    tfds_classification("mnist", 10, (28, 28, 1)),
    tfds_classification("fashion_mnist", 10, (28, 28, 1)),
    tfds_classification("cifar10", 10, (32, 32, 3), augmentation="crop_flip"),
    tfds_classification("cifar100", 100, (32, 32, 3), augmentation="crop_flip"),
    tfds_classification(
      "imagenet2012",
      1000,
      (IMAGENET_CROP, IMAGENET_CROP, 3),
      decode=decoders.imagenet_record,
      splits=("train", "validation"),
      stored_shape=(IMAGENET_RESIZE, IMAGENET_RESIZE, 3),
      eval_crop=IMAGENET_CROP,
      augmentation="alexnet",
      prepare=tfds_prepare("imagenet2012", manual=True),
    ),
    DatasetSpec(
      name="oxford_iiit_pet",
      source=sources.TfdsSource("oxford_iiit_pet", decoders.pet_record),
      task="segmentation",
      num_classes=3,
      image_shape=(PET_SIZE, PET_SIZE, 3),
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
  registering the same name again replaces the arrays.
  """
  source = sources.InMemoryArrays.from_splits(name, splits)
  register(
    DatasetSpec(
      name=name,
      source=source,
      splits=tuple(source.splits),
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


def open_source(name: str, split: str, data_dir: str | None = None) -> grain.MapDataset:
  """A random-access dataset of records {'image': uint8 (H, W, C), 'label': int32}.

  Records are at the spec's ``stored_shape`` (ImageNet's are 256 x 256; crops to 224 happen in
  the pipeline); pet records are PET_SIZE x PET_SIZE with an int32 (H, W) mask as label.
  """
  found = spec(name)
  found.check_split(split)
  return found.source.records(found, split, resolve_data_dir(data_dir))


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
  name: str, split: str, data_dir: str | None = None, start: int = 0, stop: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Records ``start:stop`` of a split as stored, in memory.

  Returns:
    images: uint8 (n, H, W, C) at :func:`record_shape` (ImageNet 256 x 256, pet PET_SIZE).
    labels: int32 (n,) for classification, uint8 (n, H, W) masks for segmentation.
  """
  found = spec(name)
  found.check_split(split)
  return found.source.load(found, split, resolve_data_dir(data_dir), start, stop)


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
