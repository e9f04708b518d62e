"""What a dataset is: one :class:`DatasetSpec` per name, random-access sources, splits in memory.

Every dataset is read as a random-access source of records
``{'image': uint8 (H, W, C), 'label': int32 () or int32 (H, W)}`` (a ``grain.MapDataset``).
Everything the rest of the package asks about a dataset (its source, splits, shapes, task, how a
stored record is decoded, the test-time view, the default training augmentation, how to prepare
it) is a field of its spec in :data:`DATASETS`; nothing else switches on a dataset's name.

Sources (``DatasetSpec.source``):

* ``"tfds"``: a prepared TFDS dataset, read through ``tfds.builder(...).as_data_source(split)``
  (``array_record`` files, random access, no TensorFlow). Nothing is downloaded: a dataset that
  is not prepared raises :class:`DatasetNotFoundError` naming the dataset, the data directory and
  the command that prepares it. Adding a TFDS classification dataset is one entry:
  ``tfds_classification("svhn_cropped", 10, (32, 32, 3))``.
* ``"builder"``: built locally on first use (scikit-learn's ``digits``,
  :mod:`research.data.digits`).
* ``"idx"``: MNIST-format IDX files in a directory (:mod:`research.data.idx`):
  ``fashion_mnist_idx`` (``$RESEARCH_FASHION_MNIST_DIR``, by default the folder of Debian's
  ``dataset-fashion-mnist``) and any ``idx:<directory>``.
* ``"arrays"``: NumPy arrays registered in this process with :func:`register_arrays`.

The data directory is ``data_dir`` if given, else ``$TFDS_DATA_DIR``, else
``~/tensorflow_datasets`` (TFDS's default).
"""

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import grain
import numpy as np

from research.data import idx as idx_lib
from research.errors import ConfigError, DatasetNotFoundError, MalformedDatasetError

STATS_MAX_EXAMPLES = 60_000  # channel statistics use at most this many training images
IMAGENET_RESIZE = 256  # AlexNet: shorter side to 256, central 256 x 256 patch
IMAGENET_CROP = 224
PET_SIZE = 128  # oxford_iiit_pet images and masks are resized to PET_SIZE x PET_SIZE
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


class ChannelStats(NamedTuple):
  """Per-channel statistics of the training images in [0, 1] (AlexNet's mean subtraction).

  ``eigenvalues`` / ``eigenvectors`` (columns) are those of the C x C pixel covariance, used by
  the PCA colour augmentation.
  """

  mean: np.ndarray  # (C,) float32
  std: np.ndarray  # (C,) float32
  eigenvalues: np.ndarray  # (C,) float32, ascending
  eigenvectors: np.ndarray  # (C, C) float32, column i belongs to eigenvalue i


def classification_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
  """A TFDS classification record {'image', 'label', ...} -> {'image': uint8, 'label': int32}."""
  return {"image": np.asarray(record["image"], np.uint8), "label": np.int32(record["label"])}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Everything about one dataset.

  Attributes:
    name: the name configs use (``config.dataset.name``).
    source: where records come from: "tfds", "builder", "idx" or "arrays" (module docstring).
    splits: the split names.
    task: "classification" (int32 labels) or "segmentation" (int32 (H, W) masks).
    num_classes: classes, or None to count them from the labels (IDX files, arrays).
    image_shape: (H, W, C) of the images batches hold, or None to read it from the records.
    stored_shape: (H, W, C) of the stored records where it differs from ``image_shape``
      (ImageNet's 256 x 256 records, cropped to 224 by the augmentation or ``eval_crop``).
    decode: a stored record -> ``{'image': uint8 (H, W, C), 'label': int32}``.
    eval_crop: the side of the central crop that is the test-time view, or None (the record).
    augmentation: the default training augmentation preset (``research.data.pipeline``).
    prepare: how to make the dataset present, shown when it is missing; ``{data_dir}`` is
      replaced by the data directory.
    tfds_name: the TFDS name ("tfds" sources).
    directory: the folder of the IDX files ("idx" sources).
    directory_env: an environment variable that, when set, replaces ``directory``.
    arrays: {split: (images uint8 (N, H, W, C), labels)} ("arrays" sources).
  """

  name: str
  source: str
  splits: tuple[str, ...] = ("train", "test")
  task: str = "classification"
  num_classes: int | None = None
  image_shape: tuple[int, int, int] | None = None
  stored_shape: tuple[int, int, int] | None = None
  decode: Callable[[dict[str, Any]], dict[str, np.ndarray]] = classification_record
  eval_crop: int | None = None
  augmentation: str = "none"
  prepare: str = ""
  tfds_name: str | None = None
  directory: str | None = None
  directory_env: str | None = None
  arrays: dict[str, tuple[np.ndarray, np.ndarray]] | None = dataclasses.field(
    default=None, repr=False, compare=False
  )


def _tfds_prepare(tfds_name: str, manual: bool = False) -> str:
  build = f"tfds build {tfds_name} --data_dir={{data_dir}} --file_format=array_record"
  setup = "pip install -e '.[prepare]' (TensorFlow, which `tfds build` needs)"
  if manual:
    return (
      f"{setup}; download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
      f"https://image-net.org into {{data_dir}}/downloads/manual, then run `{build}`"
    )
  return f"{setup}, then on a machine with internet access run `{build}` (copy {{data_dir}} here)"


def tfds_classification(
  tfds_name: str, num_classes: int, image_shape: tuple[int, int, int], **fields
) -> DatasetSpec:
  """The spec of a TFDS image classification dataset stored as {'image', 'label'} records."""
  fields = {"prepare": _tfds_prepare(tfds_name), **fields}
  return DatasetSpec(
    name=tfds_name,
    source="tfds",
    num_classes=num_classes,
    image_shape=image_shape,
    tfds_name=tfds_name,
    **fields,
  )


def _resize(image: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
  """Resizes a uint8 (H, W, C) image with PIL (bilinear, or nearest for masks)."""
  from PIL import Image

  channels = image.shape[-1]
  pil = Image.fromarray(image[..., 0] if channels == 1 else image)
  method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
  out = np.asarray(pil.resize((width, height), method))
  return out.reshape(height, width, channels)


def _imagenet_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
  """AlexNet's preprocessing: shorter side to 256, then the central 256 x 256 patch."""
  image = np.asarray(record["image"])
  h, w = image.shape[:2]
  scale = IMAGENET_RESIZE / min(h, w)
  nh, nw = max(IMAGENET_RESIZE, round(h * scale)), max(IMAGENET_RESIZE, round(w * scale))
  image = _resize(image, nh, nw)
  top, left = (nh - IMAGENET_RESIZE) // 2, (nw - IMAGENET_RESIZE) // 2
  image = image[top : top + IMAGENET_RESIZE, left : left + IMAGENET_RESIZE]
  return {"image": image, "label": np.int32(record["label"])}


def _pet_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
  """Image and trimap resized to PET_SIZE; trimap 1 (pet), 2 (background), 3 (border) -> 0, 1, 2.

  Values outside {1, 2, 3} (absent from the real data) count as border (2).
  """
  image = _resize(np.asarray(record["image"]), PET_SIZE, PET_SIZE)
  mask = _resize(np.asarray(record["segmentation_mask"]), PET_SIZE, PET_SIZE, nearest=True)
  mask = mask[..., 0].astype(np.int32)
  label = np.where((mask >= 1) & (mask <= 3), mask - 1, 2).astype(np.int32)
  return {"image": image, "label": label}


_IDX_PREPARE = "put MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...) in {directory}"

DATASETS: dict[str, DatasetSpec] = {
  spec.name: spec
  for spec in (
    DatasetSpec(
      name="digits",
      source="builder",
      num_classes=10,
      image_shape=(8, 8, 1),
      prepare="nothing to do: it is built from scikit-learn into {data_dir} on first use",
    ),
    DatasetSpec(
      name="fashion_mnist_idx",
      source="idx",
      num_classes=10,
      image_shape=(28, 28, 1),
      directory=FASHION_MNIST_DEFAULT_DIR,
      directory_env=FASHION_MNIST_DIR_ENV,
      prepare=(
        "on Debian `apt-get install dataset-fashion-mnist`, or "
        + _IDX_PREPARE
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
      splits=("train", "validation"),
      stored_shape=(IMAGENET_RESIZE, IMAGENET_RESIZE, 3),
      decode=_imagenet_record,
      eval_crop=IMAGENET_CROP,
      augmentation="alexnet",
      prepare=_tfds_prepare("imagenet2012", manual=True),
    ),
    DatasetSpec(
      name="oxford_iiit_pet",
      source="tfds",
      task="segmentation",
      num_classes=3,
      image_shape=(PET_SIZE, PET_SIZE, 3),
      decode=_pet_record,
      augmentation="segmentation",
      tfds_name="oxford_iiit_pet",
      prepare=_tfds_prepare("oxford_iiit_pet"),
    ),
  )
}


def register(spec: DatasetSpec) -> DatasetSpec:
  """Adds ``spec`` to :data:`DATASETS` (a new name, or again an "arrays" name); returns it."""
  if spec.source not in ("tfds", "builder", "idx", "arrays"):
    raise ValueError(f"DatasetSpec.source={spec.source!r} must be tfds, builder, idx or arrays")
  if spec.task not in TASKS:
    raise ValueError(f"DatasetSpec.task={spec.task!r} must be one of {TASKS}")
  old = DATASETS.get(spec.name)
  if old is not None and not (old.source == spec.source == "arrays"):
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
  stored = {}
  for split, (images, labels) in splits.items():
    images = np.asarray(images)
    if images.dtype != np.uint8:
      images = np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)
    labels = np.asarray(labels, np.int32)
    if images.ndim != 4 or len(images) != len(labels):
      raise ValueError(
        f"register_arrays({name!r}): split {split!r} has images {images.shape} and labels "
        f"{labels.shape}; expected (N, H, W, C) and (N,) or (N, H, W)"
      )
    stored[split] = idx_lib.IdxArrays(images, labels)
  register(
    DatasetSpec(
      name=name,
      source="arrays",
      splits=tuple(stored),
      task=task,
      num_classes=num_classes,
      augmentation=augmentation,
      arrays=stored,
      prepare="call research.data.register_arrays in this process first",
    )
  )
  return name


def known_names() -> list[str]:
  return [*DATASETS, "idx:<directory>"]


def spec(name: str) -> DatasetSpec:
  """The spec of ``name`` (``idx:<directory>`` makes one); ValueError for an unknown name."""
  if name.startswith("idx:"):
    directory = name[len("idx:") :]
    return DatasetSpec(name=name, source="idx", directory=directory, prepare=_IDX_PREPARE)
  if name not in DATASETS:
    raise ConfigError(f"Unknown dataset name {name!r}; known: {', '.join(known_names())}.")
  found = DATASETS[name]
  if found.directory_env and os.environ.get(found.directory_env):
    return dataclasses.replace(found, directory=os.environ[found.directory_env])
  return found


def resolve_data_dir(data_dir: str | None = None) -> str:
  """``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  if data_dir:
    return os.fspath(data_dir)
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _check_split(spec_: DatasetSpec, split: str) -> None:
  if split not in spec_.splits:
    raise ConfigError(
      f"Dataset {spec_.name!r} has no split {split!r}; its splits are {list(spec_.splits)}."
    )


def _missing(spec_: DatasetSpec, data_dir: str, reason: str) -> DatasetNotFoundError:
  how = spec_.prepare.format(data_dir=data_dir, directory=spec_.directory)
  where = f"in {spec_.directory!r}" if spec_.source == "idx" else f"in data dir {data_dir!r}"
  return DatasetNotFoundError(f"Dataset {spec_.name!r} {reason} {where}. To prepare it, {how}.")


def _tfds_source(spec_: DatasetSpec, split: str, data_dir: str):
  """The split's TFDS data source; raises DatasetNotFoundError before any download."""
  import tensorflow_datasets as tfds

  builder = tfds.builder(spec_.tfds_name, data_dir=data_dir)
  if not builder.is_prepared():
    raise _missing(spec_, data_dir, "is not prepared")
  try:
    return builder.as_data_source(split=split)
  except NotImplementedError as error:  # prepared, but as tfrecord: no random access
    raise _missing(spec_, data_dir, "is not stored as array_record (random access)") from error


class ArraySource(Sequence):
  """Random access to in-memory arrays: ``source[i] == {'image': uint8, 'label': int32}``."""

  def __init__(self, arrays: idx_lib.IdxArrays):
    self.arrays = arrays

  def __len__(self) -> int:
    return len(self.arrays.labels)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {"image": self.arrays.images[index], "label": self.arrays.labels[index]}


def _bad_label(name: str, split: str, label: int, num_classes: int | None, why: str = ""):
  valid = f"[0, {num_classes})" if num_classes is not None else "[0, number of classes)"
  return MalformedDatasetError(
    f"Dataset {name!r} split {split!r} has label {label}, outside {valid}{why}; labels must be "
    "the class indices 0..K-1: fix the labels (re-extract or regenerate the labels file)."
  )


def check_labels(name: str, split: str, labels: np.ndarray, num_classes: int | None) -> None:
  """Raises MalformedDatasetError for a label (or mask value) outside [0, num_classes) (only a
  negative one when ``num_classes`` is None), naming the split, the value and the range."""
  if not labels.size:
    return
  low, high = int(labels.min()), int(labels.max())
  if low < 0:
    raise _bad_label(name, split, low, num_classes)
  if num_classes is not None and high >= num_classes:
    raise _bad_label(name, split, high, num_classes)


def _count_classes(spec_: DatasetSpec, arrays: dict[str, idx_lib.IdxArrays]) -> int:
  """The number of classes of a spec without one: the largest label + 1.

  For IDX files every class up to the largest label must occur in some split: a label past a
  class that no example has (a 200 among 0..9) is damage, not a 201-class problem. (Registered
  arrays may leave classes out on purpose, e.g. fine-tuning on classes 5..9 of 10.)
  """
  top = max((int(a.labels.max()) for a in arrays.values() if a.labels.size), default=-1)
  if spec_.source != "idx" or top < 0:
    return top + 1
  used = np.zeros(top + 1, bool)
  for a in arrays.values():
    used[np.unique(a.labels)] = True
  if used.all():
    return top + 1
  gap = int(np.argmin(used))
  for split, a in arrays.items():
    above = a.labels[a.labels > gap]
    if above.size:
      why = f" (no example of any split has label {gap}, so the classes end before it)"
      raise _bad_label(spec_.name, split, int(above.max()), gap, why)
  return top + 1  # unreachable: `used` has a True past `gap`


def _arrays(spec_: DatasetSpec, split: str) -> idx_lib.IdxArrays | None:
  """The split as arrays for the sources that hold them ("idx", "arrays"), else None; their
  labels checked against the spec's ``num_classes`` (``check_labels``)."""
  if spec_.source == "arrays":
    arrays = spec_.arrays[split]
  elif spec_.source == "idx":
    try:
      arrays = idx_lib.read_split(spec_.directory, split)
    except FileNotFoundError as error:
      raise _missing(spec_, "", f"is missing: {error}") from error
  else:
    return None
  check_labels(spec_.name, split, arrays.labels, spec_.num_classes)
  return arrays


# ----------------------------------------------------------------------------- all datasets


def open_source(name: str, split: str, data_dir: str | None = None) -> grain.MapDataset:
  """A random-access dataset of records {'image': uint8 (H, W, C), 'label': int32}.

  Records are at the spec's ``stored_shape`` (ImageNet's are 256 x 256; crops to 224 happen in
  the pipeline); pet records are PET_SIZE x PET_SIZE with an int32 (H, W) mask as label.
  """
  found = spec(name)
  _check_split(found, split)
  data_dir = resolve_data_dir(data_dir)
  arrays = _arrays(found, split)
  if arrays is not None:
    return grain.MapDataset.source(ArraySource(arrays))
  if found.source == "builder":
    from research.data import digits

    source = digits.ensure_built(data_dir).as_data_source(split=split)
  else:
    source = _tfds_source(found, split, data_dir)
  return grain.MapDataset.source(source).map(found.decode)


def get_info(name: str, data_dir: str | None = None) -> DatasetInfo:
  """Number of classes, image shape (as the iterator yields it), split sizes and task."""
  found = spec(name)
  sources = {split: open_source(name, split, data_dir) for split in found.splits}
  num_classes, image_shape = found.num_classes, found.image_shape
  if num_classes is None or image_shape is None:
    arrays = {split: _arrays(found, split) for split in found.splits}
    if num_classes is None:
      num_classes = _count_classes(found, arrays)
    if image_shape is None:
      image_shape = tuple(int(d) for d in arrays[found.splits[0]].images.shape[1:])
  return DatasetInfo(
    name=name,
    num_classes=num_classes,
    image_shape=tuple(image_shape),
    num_examples={split: len(source) for split, source in sources.items()},
    task=found.task,
  )


def eval_crop(name: str) -> int | None:
  """The side of the central crop that is the test-time view of ``name``'s records, or None."""
  return spec(name).eval_crop


def eval_view(name: str, image: np.ndarray) -> np.ndarray:
  """The deterministic test-time view of one record's image (e.g. ImageNet's central 224)."""
  size = eval_crop(name)
  if size is None:
    return image
  h, w = image.shape[:2]
  top, left = (h - size) // 2, (w - size) // 2
  return image[top : top + size, left : left + size]


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
  _check_split(found, split)
  arrays = _arrays(found, split)
  if arrays is not None:
    images, labels = arrays.images[start:stop], arrays.labels[start:stop]
    return images, labels.astype(np.uint8) if found.task == "segmentation" else labels
  source = open_source(name, split, data_dir)
  records = [source[i] for i in range(len(source))[start:stop]]
  if not records:
    raise ValueError(f"{name}:{split}[{start}:{stop}] holds no examples")
  images = np.stack([r["image"] for r in records]).astype(np.uint8, copy=False)
  labels = np.stack([r["label"] for r in records])
  check_labels(name, split, labels, found.num_classes)
  labels = labels.astype(np.uint8 if labels.ndim > 1 else np.int32)
  return images, labels


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


def _stats_path(found: DatasetSpec, data_dir: str) -> str:
  key = re.sub(r"[^A-Za-z0-9_]", "_", found.name if found.source != "idx" else "idx")
  if found.source == "idx":
    key += "_" + hashlib.sha1(os.path.abspath(found.directory).encode()).hexdigest()[:12]
  return os.path.join(data_dir, "research_stats", f"{key}.json")


def sample_images(source: grain.MapDataset, view=None, limit: int = STATS_MAX_EXAMPLES):
  """Yields every image of ``source`` up to ``limit``, else ``limit`` evenly spaced ones."""
  n = len(source)
  view = view or (lambda image: image)
  for i in np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int)):
    yield view(source[int(i)]["image"])


def stats_of_images(images: Iterable[np.ndarray]) -> ChannelStats:
  """Channel statistics of uint8 images, in the [0, 1] scale of the pipeline.

  ``images`` yields arrays (..., C) (single images or chunks); the sums are accumulated in
  float64, so the images never need to fit in memory together:
  mean = sum x / n, covariance = (sum x x^T - n mean mean^T) / (n - 1), std = sqrt(diag).
  """
  count, total, outer = 0, 0.0, 0.0
  for image in images:
    flat = image.reshape(-1, image.shape[-1]).astype(np.float64) / 255.0  # (pixels, C)
    count += flat.shape[0]
    total = total + flat.sum(axis=0)
    outer = outer + flat.T @ flat
  mean = total / count
  covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
  eigenvalues, eigenvectors = np.linalg.eigh(covariance)
  return ChannelStats(
    mean=mean.astype(np.float32),
    std=np.sqrt(np.diag(covariance)).astype(np.float32),
    eigenvalues=np.maximum(eigenvalues, 0.0).astype(np.float32),
    eigenvectors=eigenvectors.astype(np.float32),
  )


def _compute_stats(found: DatasetSpec, data_dir: str) -> ChannelStats:
  arrays = _arrays(found, "train")
  if arrays is not None:
    images = arrays.images
    return stats_of_images(images[i : i + 1024] for i in range(0, len(images), 1024))
  source = open_source(found.name, "train", data_dir)
  return stats_of_images(sample_images(source, lambda image: eval_view(found.name, image)))


def channel_stats(name: str, data_dir: str | None = None) -> ChannelStats:
  """Per-channel mean / std (and RGB eigenpairs) of the training split, computed once.

  Cached as JSON in ``<data dir>/research_stats/<name>.json`` (written atomically; not for
  "arrays" datasets, which live only in this process). Uses every training image up to
  STATS_MAX_EXAMPLES, else that many evenly spaced ones.
  """
  found = spec(name)
  data_dir = resolve_data_dir(data_dir)
  if found.source == "arrays":
    return _compute_stats(found, data_dir)
  path = _stats_path(found, data_dir)
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    return ChannelStats(**{k: np.asarray(v, np.float32) for k, v in cached.items()})
  stats = _compute_stats(found, data_dir)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump({k: np.asarray(v).tolist() for k, v in stats._asdict().items()}, f)
  os.replace(tmp, path)
  return stats
