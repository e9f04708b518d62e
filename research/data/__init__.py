"""Datasets, input pipelines, augmentations and device batching (knows no model, no loop).

TensorFlow is never imported at package import; TFDS only when a dataset is opened.
"""

from research.data import augment, device, host_augment
from research.data.datasets import (
  ChannelStats,
  DatasetInfo,
  DatasetNotFoundError,
  channel_stats,
  eval_crop,
  get_info,
  known_names,
  load_arrays,
  load_split,
  open_source,
  record_shape,
  resolve_data_dir,
  split_nbytes,
)
from research.data.pipeline import (
  DataIterator,
  check_batch_size,
  create_iterator,
  make_iterator,
  prefetch_to_device,
  shard_batch,
)

__all__ = [
  "ChannelStats",
  "DataIterator",
  "DatasetInfo",
  "DatasetNotFoundError",
  "augment",
  "device",
  "channel_stats",
  "eval_crop",
  "check_batch_size",
  "create_iterator",
  "get_info",
  "host_augment",
  "known_names",
  "load_arrays",
  "load_split",
  "make_iterator",
  "open_source",
  "prefetch_to_device",
  "record_shape",
  "resolve_data_dir",
  "shard_batch",
  "split_nbytes",
]
