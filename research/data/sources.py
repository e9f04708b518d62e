"""Where a dataset's records come from: one small type per kind, named by ``DatasetSpec.source``.

Every source yields records ``{'image': uint8 (H, W, C), 'label': int32 () or int32 (H, W)}``
and owns how they are read, decoded, checked and summarized (channel statistics). Two families:

* read record by record (:class:`RecordSource`): :class:`TfdsSource`, a prepared TFDS dataset
  read through ``tfds.builder(...).as_data_source(split)`` (``array_record`` files, random
  access, no TensorFlow; nothing is downloaded, a dataset that is not prepared raises
  ``DatasetNotFoundError``), its records mapped through a decoder of
  :mod:`research.data.decoders`; :class:`DigitsBuilder`, scikit-learn's digits built locally on
  first use (:mod:`research.data.digits`).
* whole splits held as arrays (:class:`ArraysSource`): :class:`IdxDirectory`, MNIST-format IDX
  files in a directory (:mod:`research.data.idx`; the dataset name ``idx:<directory>`` makes
  one, :func:`parse_name`); :class:`InMemoryArrays`, NumPy arrays registered in this process
  (``research.data.register_arrays``).

A source's methods take the dataset's spec (``ds``: a ``research.data.datasets.DatasetSpec``)
for its name, splits, task, number of classes, test-time view and preparation hint.
"""

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import grain
import numpy as np

from research.data import decoders
from research.data import idx as idx_lib
from research.data import stats as stats_lib
from research.errors import DatasetNotFoundError, MalformedDatasetError

if TYPE_CHECKING:
  from research.data.datasets import DatasetSpec

Record = dict[str, np.ndarray]
Rows = slice | np.ndarray  # records of a stored split: a slice, or sorted int64 indices
IDX_PREFIX = "idx:"
NAME_PATTERNS = (f"{IDX_PREFIX}<directory>",)  # dataset names that describe their own source
IDX_PREPARE = "put MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...) in {directory}"


class SplitArrays(NamedTuple):
  """One split held in memory."""

  images: np.ndarray  # uint8 (N, H, W, C)
  labels: np.ndarray  # int32 (N,), or (N, H, W) masks for segmentation


class NamedSource(NamedTuple):
  """The source a dataset name itself describes, and how to make it present."""

  source: "Source"
  prepare: str


def tfds_prepare(tfds_name: str, manual: bool = False) -> str:
  """How to prepare a TFDS dataset (``{data_dir}`` is filled in when it is missing)."""
  build = f"tfds build {tfds_name} --data_dir={{data_dir}} --file_format=array_record"
  setup = "pip install -e '.[prepare]' (TensorFlow, which `tfds build` needs)"
  if manual:
    return (
      f"{setup}; download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
      f"https://image-net.org into {{data_dir}}/downloads/manual, then run `{build}`"
    )
  return f"{setup}, then on a machine with internet access run `{build}` (copy {{data_dir}} here)"


def parse_name(name: str) -> NamedSource | None:
  """The source of a name of :data:`NAME_PATTERNS` (``idx:<directory>``), else None."""
  if name.startswith(IDX_PREFIX):
    return NamedSource(IdxDirectory(name[len(IDX_PREFIX) :]), IDX_PREPARE)
  return None


def not_found(name: str, reason: str, where: str, how: str) -> DatasetNotFoundError:
  return DatasetNotFoundError(f"Dataset {name!r} {reason} {where}. To prepare it, {how}.")


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


class Source:
  """The interface every kind implements (defaults for sources read from the data directory)."""

  replaceable = False  # may register_arrays register the name again

  def resolve(self) -> "Source":
    """This source with the environment applied (a directory variable); default: itself."""
    return self

  def missing(self, ds: "DatasetSpec", data_dir: str, reason: str) -> DatasetNotFoundError:
    """The error for a dataset that is absent: ``reason``, where, and the spec's ``prepare``."""
    how = ds.prepare.format(data_dir=data_dir, directory=None)
    return not_found(ds.name, reason, f"in data dir {data_dir!r}", how)

  def records(self, ds: "DatasetSpec", split: str, data_dir: str) -> grain.MapDataset:
    """Random access to the split's records {'image': uint8 (H, W, C), 'label': int32}."""
    raise NotImplementedError

  def arrays(self, ds: "DatasetSpec", split: str) -> SplitArrays | None:
    """The split as checked arrays for the sources that hold them, else None."""
    return None

  def info(self, ds: "DatasetSpec") -> tuple[int, tuple[int, int, int]]:
    """(number of classes, image shape (H, W, C)); default: the spec's."""
    return ds.num_classes, ds.image_shape

  def load(self, ds: "DatasetSpec", split: str, data_dir: str, rows: Rows):
    """The records ``rows`` (a slice or sorted indices of the stored split) as (uint8 images
    (n, H, W, C), labels int32 (n,) or uint8 (n, H, W) masks)."""
    raise NotImplementedError

  def stats_key(self, ds: "DatasetSpec") -> str:
    """The name of the statistics' cache file in ``<data dir>/research_stats``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", ds.name)

  def compute_stats(self, ds: "DatasetSpec", data_dir: str) -> stats_lib.ChannelStats:
    raise NotImplementedError

  def channel_stats(self, ds: "DatasetSpec", data_dir: str) -> stats_lib.ChannelStats:
    """The training split's statistics, cached as JSON under ``data_dir`` (computed once)."""
    path = os.path.join(data_dir, "research_stats", f"{self.stats_key(ds)}.json")
    return stats_lib.cached(path, lambda: self.compute_stats(ds, data_dir))


class RecordSource(Source):
  """Records read one at a time from a TFDS data source and decoded."""

  decode: Callable[[dict[str, Any]], Record]

  def data_source(self, ds: "DatasetSpec", split: str, data_dir: str):
    """The split's stored records (a random-access TFDS data source)."""
    raise NotImplementedError

  def records(self, ds: "DatasetSpec", split: str, data_dir: str) -> grain.MapDataset:
    return grain.MapDataset.source(self.data_source(ds, split, data_dir)).map(self.decode)

  def load(self, ds: "DatasetSpec", split: str, data_dir: str, rows: Rows):
    source = self.records(ds, split, data_dir)
    records = [source[int(i)] for i in np.arange(len(source))[rows]]
    if not records:
      raise ValueError(f"{ds.name}:{split} rows {rows} hold no examples")
    images = np.stack([r["image"] for r in records]).astype(np.uint8, copy=False)
    labels = np.stack([r["label"] for r in records])
    check_labels(ds.name, split, labels, ds.num_classes)
    return images, labels.astype(np.uint8 if labels.ndim > 1 else np.int32)

  def compute_stats(self, ds: "DatasetSpec", data_dir: str) -> stats_lib.ChannelStats:
    """From up to STATS_MAX_EXAMPLES evenly spaced training records, in their test-time view."""
    source = self.records(ds, "train", data_dir)
    return stats_lib.stats_of_images(stats_lib.sample_images(source, ds.eval_view))


@dataclasses.dataclass(frozen=True)
class TfdsSource(RecordSource):
  """A prepared TFDS dataset ``tfds_name``; ``decode`` turns a stored record into a record."""

  tfds_name: str
  decode: Callable[[dict[str, Any]], Record] = decoders.classification_record

  def data_source(self, ds: "DatasetSpec", split: str, data_dir: str):
    """The split's TFDS data source; raises DatasetNotFoundError before any download."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(self.tfds_name, data_dir=data_dir)
    if not builder.is_prepared():
      raise self.missing(ds, data_dir, "is not prepared")
    try:
      return builder.as_data_source(split=split)
    except NotImplementedError as error:  # prepared, but as tfrecord: no random access
      raise self.missing(ds, data_dir, "is not stored as array_record (random access)") from error


@dataclasses.dataclass(frozen=True)
class DigitsBuilder(RecordSource):
  """scikit-learn's digits, built as a TFDS dataset in the data directory on first use."""

  decode: Callable[[dict[str, Any]], Record] = decoders.classification_record

  def data_source(self, ds: "DatasetSpec", split: str, data_dir: str):
    from research.data import digits

    return digits.ensure_built(data_dir).as_data_source(split=split)


class ArrayRecords(Sequence):
  """Random access to arrays: ``records[i] == {'image': uint8 (H, W, C), 'label': int32}``."""

  def __init__(self, arrays: SplitArrays):
    self.arrays = arrays

  def __len__(self) -> int:
    return len(self.arrays.labels)

  def __getitem__(self, index: int) -> Record:
    return {"image": self.arrays.images[index], "label": self.arrays.labels[index]}


class ArraysSource(Source):
  """Whole splits held as arrays; the number of classes and the image shape can come from them."""

  def split_arrays(self, ds: "DatasetSpec", split: str) -> SplitArrays:
    raise NotImplementedError

  def arrays(self, ds: "DatasetSpec", split: str) -> SplitArrays:
    """The split, its labels checked against the spec's ``num_classes`` (``check_labels``)."""
    arrays = self.split_arrays(ds, split)
    check_labels(ds.name, split, arrays.labels, ds.num_classes)
    return arrays

  def records(self, ds: "DatasetSpec", split: str, data_dir: str) -> grain.MapDataset:
    return grain.MapDataset.source(ArrayRecords(self.arrays(ds, split)))

  def count_classes(self, ds: "DatasetSpec", arrays: dict[str, SplitArrays]) -> int:
    """The largest label + 1 (registered arrays may leave classes out, e.g. classes 5..9)."""
    return max((int(a.labels.max()) for a in arrays.values() if a.labels.size), default=-1) + 1

  def info(self, ds: "DatasetSpec") -> tuple[int, tuple[int, int, int]]:
    """The spec's number of classes and image shape, else those of the arrays."""
    num_classes, image_shape = ds.num_classes, ds.image_shape
    if num_classes is None or image_shape is None:
      arrays = {split: self.arrays(ds, split) for split in ds.splits}
      if num_classes is None:
        num_classes = self.count_classes(ds, arrays)
      if image_shape is None:
        image_shape = tuple(int(d) for d in arrays[ds.splits[0]].images.shape[1:])
    return num_classes, image_shape

  def load(self, ds: "DatasetSpec", split: str, data_dir: str, rows: Rows):
    arrays = self.arrays(ds, split)
    images, labels = arrays.images[rows], arrays.labels[rows]
    return images, labels.astype(np.uint8) if ds.task == "segmentation" else labels

  def compute_stats(self, ds: "DatasetSpec", data_dir: str) -> stats_lib.ChannelStats:
    """From every training image, as stored."""
    return stats_lib.stats_of_arrays(self.arrays(ds, "train").images)


@dataclasses.dataclass(frozen=True)
class IdxDirectory(ArraysSource):
  """MNIST-format IDX files in ``directory`` (``$directory_env`` instead, when it is set)."""

  directory: str
  directory_env: str | None = None

  def resolve(self) -> "IdxDirectory":
    if self.directory_env and os.environ.get(self.directory_env):
      return dataclasses.replace(self, directory=os.environ[self.directory_env])
    return self

  def missing(self, ds: "DatasetSpec", data_dir: str, reason: str) -> DatasetNotFoundError:
    how = ds.prepare.format(data_dir=data_dir, directory=self.directory)
    return not_found(ds.name, reason, f"in {self.directory!r}", how)

  def split_arrays(self, ds: "DatasetSpec", split: str) -> SplitArrays:
    try:
      return SplitArrays(*idx_lib.read_split(self.directory, split))
    except FileNotFoundError as error:
      raise self.missing(ds, "", f"is missing: {error}") from error

  def count_classes(self, ds: "DatasetSpec", arrays: dict[str, SplitArrays]) -> int:
    """The largest label + 1, every class up to it present in some split: a label past a class
    that no example has (a 200 among 0..9) is damage, not a 201-class problem."""
    top = super().count_classes(ds, arrays) - 1
    if top < 0:
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
        raise _bad_label(ds.name, split, int(above.max()), gap, why)
    return top + 1  # unreachable: `used` has a True past `gap`

  def stats_key(self, ds: "DatasetSpec") -> str:
    """One cache file per directory: ``idx_<sha1 of its absolute path, 12 hex digits>``."""
    return "idx_" + hashlib.sha1(os.path.abspath(self.directory).encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True, eq=False)
class InMemoryArrays(ArraysSource):
  """Arrays registered in this process: {split: SplitArrays}; never cached on disk."""

  splits: dict[str, SplitArrays] = dataclasses.field(repr=False)
  replaceable = True

  @classmethod
  def from_splits(
    cls, name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]]
  ) -> "InMemoryArrays":
    """Images uint8 (N, H, W, C), or floats in [0, 1] stored as ``round(255 x)``; labels int
    (N,) or (N, H, W), stored as int32. ValueError naming the split for other shapes."""
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
      stored[split] = SplitArrays(images, labels)
    return cls(stored)

  def split_arrays(self, ds: "DatasetSpec", split: str) -> SplitArrays:
    return self.splits[split]

  def channel_stats(self, ds: "DatasetSpec", data_dir: str) -> stats_lib.ChannelStats:
    return self.compute_stats(ds, data_dir)
