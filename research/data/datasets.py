"""Dataset names, their info, random-access sources, whole splits in memory, channel statistics.

Every dataset is read as a random-access source of records
``{'image': uint8 (H, W, C), 'label': int32 () or int32 (H, W)}`` (a ``grain.MapDataset``):

* TFDS names go through ``tfds.builder(...).as_data_source(split)`` (``array_record`` files,
  random access without TensorFlow), with no download: a dataset that is not prepared raises
  :class:`DatasetNotFoundError` naming the dataset, the data directory and the command to
  prepare it, before anything else runs.
* ``digits`` is scikit-learn's digits, built locally into the data directory on first use
  (:mod:`research.data.digits`).
* ``fashion_mnist_idx`` and ``idx:<directory>`` read MNIST-format IDX files
  (:mod:`research.data.idx`).

The data directory is ``data_dir`` if given, else ``$TFDS_DATA_DIR``, else
``~/tensorflow_datasets`` (TFDS's default).
"""

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import grain
import numpy as np

from research.data import idx as idx_lib

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
STATS_MAX_EXAMPLES = 60_000  # channel statistics use at most this many training images
IMAGENET_RESIZE = 256  # AlexNet: shorter side to 256, central 256 x 256 patch
IMAGENET_CROP = 224
PET_SIZE = 128  # oxford_iiit_pet images and masks are resized to PET_SIZE x PET_SIZE


class DatasetNotFoundError(FileNotFoundError):
  """A dataset is not present where it was looked for; the message says how to prepare it."""


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


class _TfdsSpec(NamedTuple):
  tfds_name: str
  splits: tuple[str, ...]
  num_classes: int
  image_shape: tuple[int, int, int]
  task: str
  manual: bool = False


TFDS_DATASETS: dict[str, _TfdsSpec] = {
  "mnist": _TfdsSpec("mnist", ("train", "test"), 10, (28, 28, 1), "classification"),
  "fashion_mnist": _TfdsSpec("fashion_mnist", ("train", "test"), 10, (28, 28, 1), "classification"),
  "cifar10": _TfdsSpec("cifar10", ("train", "test"), 10, (32, 32, 3), "classification"),
  "cifar100": _TfdsSpec("cifar100", ("train", "test"), 100, (32, 32, 3), "classification"),
  "imagenet2012": _TfdsSpec(
    "imagenet2012",
    ("train", "validation"),
    1000,
    (IMAGENET_CROP, IMAGENET_CROP, 3),
    "classification",
    manual=True,
  ),
  "oxford_iiit_pet": _TfdsSpec(
    "oxford_iiit_pet", ("train", "test"), 3, (PET_SIZE, PET_SIZE, 3), "segmentation"
  ),
}
LOCAL_DATASETS = ("digits", "fashion_mnist_idx", "idx:<directory>")


def known_names() -> list[str]:
  return [*LOCAL_DATASETS, *TFDS_DATASETS]


def resolve_data_dir(data_dir: str | None = None) -> str:
  """``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  if data_dir:
    return os.fspath(data_dir)
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _idx_dir(name: str) -> str | None:
  if name == "fashion_mnist_idx":
    return FASHION_MNIST_DIR
  if name.startswith("idx:"):
    return name[len("idx:") :]
  return None


def _check_name(name: str) -> None:
  if name == "digits" or _idx_dir(name) is not None or name in TFDS_DATASETS:
    return
  raise ValueError(f"Unknown dataset name {name!r}; known: {', '.join(known_names())}.")


def _check_split(name: str, split: str, splits: tuple[str, ...]) -> None:
  if split not in splits:
    raise ValueError(f"Dataset {name!r} has no split {split!r}; its splits are {list(splits)}.")


# ----------------------------------------------------------------------------- TFDS datasets


def _missing_message(name: str, data_dir: str, reason: str) -> str:
  spec = TFDS_DATASETS[name]
  build = f"tfds build {spec.tfds_name} --data_dir={data_dir} --file_format=array_record"
  if spec.manual:
    how = (
      f"download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org "
      f"into {os.path.join(data_dir, 'downloads', 'manual')}, then run `{build}`"
    )
  else:
    how = f"on a machine with internet access run `{build}` (then copy {data_dir} here if needed)"
  return f"Dataset {name!r} {reason} in data dir {data_dir!r}. To prepare it, {how}."


def _tfds_builder(name: str, data_dir: str):
  """The prepared TFDS builder of ``name``; raises DatasetNotFoundError before any download."""
  import tensorflow_datasets as tfds

  builder = tfds.builder(TFDS_DATASETS[name].tfds_name, data_dir=data_dir)
  if not builder.is_prepared():
    raise DatasetNotFoundError(_missing_message(name, data_dir, "is not prepared"))
  return builder


def _tfds_source(name: str, split: str, data_dir: str):
  builder = _tfds_builder(name, data_dir)
  try:
    return builder.as_data_source(split=split)
  except NotImplementedError as error:  # prepared, but as tfrecord: no random access
    raise DatasetNotFoundError(
      _missing_message(name, data_dir, "is not stored as array_record (random access)")
    ) from error


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


def classification_record(record: dict[str, Any]) -> dict[str, np.ndarray]:
  return {"image": np.asarray(record["image"], np.uint8), "label": np.int32(record["label"])}


def _record_fn(name: str) -> Callable[[dict[str, Any]], dict[str, np.ndarray]]:
  return {"imagenet2012": _imagenet_record, "oxford_iiit_pet": _pet_record}.get(
    name, classification_record
  )


# ----------------------------------------------------------------------------- all datasets


def open_source(name: str, split: str, data_dir: str | None = None) -> grain.MapDataset:
  """A random-access dataset of records {'image': uint8 (H, W, C), 'label': int32}.

  ImageNet records are 256 x 256 (crops to 224 happen in the pipeline); pet records are
  PET_SIZE x PET_SIZE with an int32 (H, W) mask as label.
  """
  _check_name(name)
  data_dir = resolve_data_dir(data_dir)
  if name == "digits":
    from research.data import digits

    _check_split(name, split, ("train", "test"))
    source = digits.ensure_built(data_dir).as_data_source(split=split)
    return grain.MapDataset.source(source).map(classification_record)
  directory = _idx_dir(name)
  if directory is not None:
    _check_split(name, split, idx_lib.SPLITS)
    return grain.MapDataset.source(idx_lib.IdxSource(directory, split))
  spec = TFDS_DATASETS[name]
  _check_split(name, split, spec.splits)
  return grain.MapDataset.source(_tfds_source(name, split, data_dir)).map(_record_fn(name))


def get_info(name: str, data_dir: str | None = None) -> DatasetInfo:
  """Number of classes, image shape (as the iterator yields it), split sizes and task."""
  _check_name(name)
  directory = _idx_dir(name)
  if directory is not None:
    train = idx_lib.read_split(directory, "train")
    test = idx_lib.read_split(directory, "test")
    return DatasetInfo(
      name=name,
      num_classes=int(max(train.labels.max(), test.labels.max())) + 1,
      image_shape=tuple(train.images.shape[1:]),
      num_examples={"train": len(train.labels), "test": len(test.labels)},
      task="classification",
    )
  if name == "digits":
    sources = {split: open_source(name, split, data_dir) for split in ("train", "test")}
    return DatasetInfo(
      name=name,
      num_classes=10,
      image_shape=(8, 8, 1),
      num_examples={split: len(source) for split, source in sources.items()},
      task="classification",
    )
  spec = TFDS_DATASETS[name]
  data_dir = resolve_data_dir(data_dir)
  return DatasetInfo(
    name=name,
    num_classes=spec.num_classes,
    image_shape=spec.image_shape,
    num_examples={split: len(_tfds_source(name, split, data_dir)) for split in spec.splits},
    task=spec.task,
  )


def eval_crop(name: str) -> int | None:
  """The side of the central crop that is the test-time view of ``name``'s records, or None."""
  return IMAGENET_CROP if name == "imagenet2012" else None


def eval_view(name: str, image: np.ndarray) -> np.ndarray:
  """The deterministic test-time view of one record's image: ImageNet's central 224 crop."""
  size = eval_crop(name)
  if size is None:
    return image
  h, w = image.shape[:2]
  top, left = (h - size) // 2, (w - size) // 2
  return image[top : top + size, left : left + size]


def record_shape(name: str, info: DatasetInfo) -> tuple[int, int, int]:
  """(H, W, C) of the stored records: ImageNet's are 256 x 256 (crops happen later)."""
  if name == "imagenet2012":
    return (IMAGENET_RESIZE, IMAGENET_RESIZE, info.image_shape[2])
  return tuple(info.image_shape)


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
  directory = _idx_dir(name)
  if directory is not None:
    _check_split(name, split, idx_lib.SPLITS)
    arrays = idx_lib.read_split(directory, split)
    return arrays.images[start:stop], arrays.labels[start:stop]
  source = open_source(name, split, data_dir)
  indices = range(len(source))[start:stop]
  records = [source[i] for i in indices]
  if not records:
    raise ValueError(f"{name}:{split}[{start}:{stop}] holds no examples")
  images = np.stack([r["image"] for r in records]).astype(np.uint8, copy=False)
  labels = np.stack([r["label"] for r in records])
  labels = labels.astype(np.uint8 if labels.ndim > 1 else np.int32)
  return images, labels


def load_arrays(name: str, split: str, data_dir: str | None = None):
  """A whole (small) split in memory, as floats.

  Returns:
    images: float32 (N, H, W, C) in [0, 1] (the test-time view, as in ``get_info``).
    labels: int32 (N,) for classification, int32 (N, H, W) for segmentation.
  """
  images, labels = load_split(name, split, data_dir)
  images = np.stack([eval_view(name, image) for image in images]) if name == "imagenet2012" \
    else images
  return images.astype(np.float32) / 255.0, labels.astype(np.int32)


def _stats_path(name: str, data_dir: str) -> str:
  directory = _idx_dir(name)
  key = re.sub(r"[^A-Za-z0-9_]", "_", name if directory is None else "idx")
  if directory is not None:
    key += "_" + hashlib.sha1(os.path.abspath(directory).encode()).hexdigest()[:12]
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


def _compute_stats(name: str, data_dir: str) -> ChannelStats:
  directory = _idx_dir(name)
  if directory is not None:
    images = idx_lib.read_split(directory, "train").images
    return stats_of_images(images[i : i + 1024] for i in range(0, len(images), 1024))
  source = open_source(name, "train", data_dir)
  return stats_of_images(sample_images(source, lambda image: eval_view(name, image)))


def channel_stats(name: str, data_dir: str | None = None) -> ChannelStats:
  """Per-channel mean / std (and RGB eigenpairs) of the training split, computed once.

  Cached as JSON in ``<data dir>/research_stats/<name>.json`` (written atomically).
  Uses every training image up to STATS_MAX_EXAMPLES, else that many evenly spaced ones.
  """
  _check_name(name)
  data_dir = resolve_data_dir(data_dir)
  path = _stats_path(name, data_dir)
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    return ChannelStats(**{k: np.asarray(v, np.float32) for k, v in cached.items()})
  stats = _compute_stats(name, data_dir)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp"
  with open(tmp, "w") as f:
    json.dump({k: np.asarray(v).tolist() for k, v in stats._asdict().items()}, f)
  os.replace(tmp, path)
  return stats
