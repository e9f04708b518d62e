"""Datasets, input pipelines, augmentations and device batching (knows no model, no loop).

One dataset is one `DatasetSpec` in `research.data.datasets.DATASETS`. TensorFlow is never
imported to read data; TFDS only when a TFDS dataset is opened.
"""

from research import _extras

_extras.require("train", "research.data")

from research.data import augment, device
from research.data.datasets import (
  DATASETS,
  ChannelStats,
  DatasetInfo,
  DatasetNotFoundError,
  DatasetSpec,
  MalformedDatasetError,
  RunSplits,
  Split,
  channel_stats,
  check_labels,
  eval_crop,
  get_info,
  holdout,
  holdout_count,
  known_names,
  load_arrays,
  load_split,
  open_source,
  record_shape,
  register,
  register_arrays,
  resolve_data_dir,
  run_splits,
  spec,
  split_nbytes,
  tfds_classification,
)
from research.data.pipeline import (
  DataIterator,
  check_batch_size,
  create_iterator,
  host_augmentation,
  make_iterator,
)

__all__ = [
  "DATASETS",
  "ChannelStats",
  "DataIterator",
  "DatasetInfo",
  "DatasetNotFoundError",
  "DatasetSpec",
  "MalformedDatasetError",
  "RunSplits",
  "Split",
  "augment",
  "channel_stats",
  "check_labels",
  "check_batch_size",
  "create_iterator",
  "device",
  "eval_crop",
  "get_info",
  "holdout",
  "holdout_count",
  "host_augmentation",
  "known_names",
  "load_arrays",
  "load_split",
  "make_iterator",
  "open_source",
  "record_shape",
  "register",
  "register_arrays",
  "resolve_data_dir",
  "run_splits",
  "spec",
  "split_nbytes",
  "tfds_classification",
]
