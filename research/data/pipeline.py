"""Input pipelines: grain over random-access sources, resumable, sharded per process.

Why grain over ``tfds.data_source`` rather than ``tf.data``: every batch is a pure function of
(seed, batch index). Shuffling is a seeded index permutation per epoch (``shuffle`` then
``repeat`` reseeds each epoch), augmentation randomness comes from a generator derived from
(seed, element index), and batch ``k`` holds elements ``k B ... (k + 1) B - 1``. The iterator's
whole state is therefore one integer (the next batch index): saving it is exact mid-epoch and
across epoch boundaries, whatever the prefetching, and costs nothing. Worker threads decode and
augment ahead of the consumer; no TensorFlow is imported.

Train iterators: shuffle per epoch from the seed, augment, repeat forever, drop no data within
an epoch but let batches straddle epochs. Eval iterators: one pass in order; the last batches
are padded to the full size and carry ``'mask'`` (1.0 real, 0.0 padding), and every process
yields the same number of batches.
"""

import functools
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import grain
import jax
import numpy as np

from research.data import datasets
from research.errors import CheckpointMismatchError, ConfigError

Example = dict[str, np.ndarray]
Augment = Callable[[Example, np.random.Generator], Example]


def check_batch_size(global_batch_size: int, num_devices: int, process_count: int = 1) -> int:
  """Checks that a global batch splits over processes and local devices; returns per device.

  Raises:
    ConfigError: naming the batch size, the device / process counts and valid sizes.
  """
  total = num_devices * process_count
  if global_batch_size <= 0 or global_batch_size % total:
    lower = max(total, global_batch_size // total * total)
    raise ConfigError(
      f"global_batch_size={global_batch_size} does not divide across {process_count} "
      f"process(es) x {num_devices} local device(s) = {total}; use a multiple of {total} "
      f"(e.g. {lower} or {lower + total})."
    )
  return global_batch_size // total


def _collate(examples: list[Example], mean=None, std=None) -> Example:
  """Stacks examples: images -> float32 (B, H, W, C) in [0, 1] (uint8 / 255), optionally
  standardized as (x - mean) / std per channel; labels -> int32."""
  images = np.stack([e["image"] for e in examples])
  images = images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images
  images = images.astype(np.float32, copy=False)
  if mean is not None:
    images = (images - mean) / std
  batch = {"image": images, "label": np.stack([e["label"] for e in examples]).astype(np.int32)}
  for key in examples[0].keys() - batch.keys():
    batch[key] = np.stack([e[key] for e in examples])
  return batch


def _eval_batch(index: int, view: grain.MapDataset, batch_size: int, collate) -> Example:
  """Batch ``index`` of an in-order pass, padded with copies of a real example, mask 0."""
  start = index * batch_size
  stop = min(start + batch_size, len(view))
  examples = [view[i] for i in range(start, stop)]
  filler = examples[0] if examples else view[0]
  num_real = len(examples)
  batch = collate(examples + [filler] * (batch_size - num_real))
  batch["mask"] = (np.arange(batch_size) < num_real).astype(np.float32)
  return batch


class DataIterator(Iterator[Example]):
  """An iterator of batches with ``get_state()`` / ``set_state(state)`` (JSON-serializable).

  The state is the next batch index plus the settings it belongs to; ``set_state`` refuses a
  state from a different dataset, split, seed, batch size or process layout.
  """

  def __init__(self, dataset: grain.MapDataset, settings: dict[str, Any], num_threads: int):
    options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=2 * num_threads)
    self._iterator = iter(dataset.to_iter_dataset(options))
    self._settings = settings
    self._length = None if settings["train"] else len(dataset)

  def __next__(self) -> Example:
    return next(self._iterator)

  def __len__(self) -> int:
    if self._length is None:
      raise TypeError("A training iterator repeats forever and has no length.")
    return self._length

  def get_state(self) -> dict[str, Any]:
    return {**self._settings, "next_batch": int(self._iterator.get_state()["next_index"])}

  def set_state(self, state: dict[str, Any]) -> None:
    for key, value in self._settings.items():
      if state.get(key) != value:
        raise CheckpointMismatchError(
          f"Iterator state has {key}={state.get(key)!r} but this iterator has {key}={value!r}; "
          "restore it into an iterator created with the same settings."
        )
    self._iterator.set_state({"next_index": int(state["next_batch"])})


def default_augmentation(name: str) -> str:
  """The training augmentation used when ``augment=None``: the dataset spec's."""
  return datasets.spec(name).augmentation


# Host augmentations (NumPy, one example, in the grain workers). Each is pure given its ``rng``
# (a ``np.random.Generator`` that grain derives from the pipeline seed and the example's
# position, so a resumed pipeline draws the same numbers). Images are (H, W, C) arrays of any
# dtype; masks (H, W). The device-side (JAX) augmentations are in research.data.augment.


def host_random_flip(rng: np.random.Generator, image: np.ndarray, *others: np.ndarray):
  """Flips ``image`` (and any ``others``, e.g. a mask) left-right with probability 1/2."""
  flip = rng.random() < 0.5
  out = [x[:, ::-1] if flip else x for x in (image, *others)]
  return out[0] if not others else tuple(out)


def host_random_crop(rng: np.random.Generator, image: np.ndarray, size: int, *others: np.ndarray):
  """A uniformly placed ``size x size`` window of ``image`` (and the same one of ``others``).

  AlexNet: random 224 x 224 patches of the 256 x 256 images.
  """
  h, w = image.shape[:2]
  if size > h or size > w:
    raise ValueError(f"crop size {size} exceeds the image size {h}x{w}; use size <= {min(h, w)}.")
  top = int(rng.integers(0, h - size + 1))
  left = int(rng.integers(0, w - size + 1))
  out = [x[top : top + size, left : left + size] for x in (image, *others)]
  return out[0] if not others else tuple(out)


def host_pad_and_crop(
  rng: np.random.Generator, image: np.ndarray, padding: int, *others: np.ndarray, other_fill=0
):
  """Zero-pads ``padding`` pixels on each side, then crops back to (H, W) at a random place.

  The CIFAR augmentation of ResNet (padding 4). ``others`` (masks) get the same window, padded
  with ``other_fill`` (e.g. the background class).
  """
  h, w = image.shape[:2]
  widths = lambda x: [(padding, padding), (padding, padding)] + [(0, 0)] * (x.ndim - 2)
  padded = [np.pad(image, widths(image))]
  padded += [np.pad(x, widths(x), constant_values=other_fill) for x in others]
  top = int(rng.integers(0, 2 * padding + 1))
  left = int(rng.integers(0, 2 * padding + 1))
  out = [x[top : top + h, left : left + w] for x in padded]
  return out[0] if not others else tuple(out)


def host_pca_colour_shift(
  rng: np.random.Generator, eigenvalues: np.ndarray, eigenvectors: np.ndarray, std: float = 0.1
) -> np.ndarray:
  """AlexNet's colour shift: [P_1 P_2 P_3] [a_1 l_1, a_2 l_2, a_3 l_3]^T, a_i ~ N(0, std^2).

  Returns the (C,) vector added to every pixel of one image (in the units of the statistics,
  [0, 1] here); one draw per image.
  """
  alpha = rng.normal(0.0, std, size=eigenvalues.shape)
  return (eigenvectors @ (alpha * eigenvalues)).astype(np.float32)


def host_augmentation(preset: str, stats: datasets.ChannelStats | None = None) -> Augment:
  """A named host augmentation ``(example, rng) -> example``.

  ``none``; ``flip``; ``crop_flip`` (zero-pad 4, random crop back, flip: CIFAR);
  ``alexnet`` (random 224 crop of 256, flip, PCA colour shift with std 0.1: needs ``stats``);
  ``segmentation`` (the same pad-8-and-crop and flip on image and mask; mask padding = 1,
  background).
  """

  def none(example, rng):
    del rng
    return example

  def flip(example, rng):
    return {**example, "image": host_random_flip(rng, example["image"])}

  def crop_flip(example, rng):
    image = host_pad_and_crop(rng, example["image"], 4)
    return {**example, "image": host_random_flip(rng, image)}

  def alexnet(example, rng):
    image = host_random_crop(rng, example["image"], datasets.IMAGENET_CROP)
    image = host_random_flip(rng, image).astype(np.float32) / 255.0
    shift = host_pca_colour_shift(rng, stats.eigenvalues, stats.eigenvectors)
    return {**example, "image": image + shift}

  def segmentation(example, rng):
    image, mask = host_pad_and_crop(rng, example["image"], 8, example["label"], other_fill=1)
    image, mask = host_random_flip(rng, image, mask)
    return {**example, "image": image, "label": mask}

  presets = {f.__name__: f for f in (none, flip, crop_flip, alexnet, segmentation)}
  if preset not in presets:
    raise ConfigError(f"Unknown augmentation {preset!r}; known: {sorted(presets)} or a callable.")
  if preset == "alexnet" and stats is None:
    raise ValueError("augmentation 'alexnet' needs channel statistics (its PCA colour shift).")
  return presets[preset]


def make_iterator(
  source: grain.MapDataset,
  *,
  global_batch_size: int,
  seed: int,
  train: bool,
  augment: Augment | None = None,
  eval_view: Callable[[np.ndarray], np.ndarray] | None = None,
  stats: datasets.ChannelStats | None = None,
  process_index: int = 0,
  process_count: int = 1,
  settings: dict[str, Any] | None = None,
  num_threads: int | None = None,
) -> DataIterator:
  """The pipeline over any random-access source of records {'image', 'label'}.

  Process ``process_index`` reads only its contiguous share of the source: for training an
  equal ``len // process_count`` records each (the remainder is dropped), for evaluation the
  near-equal parts of ``np.array_split`` (nothing dropped).
  """
  if global_batch_size % process_count:
    raise ConfigError(
      f"global_batch_size={global_batch_size} does not divide across process_count="
      f"{process_count}; use a multiple of {process_count}."
    )
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} must be in [0, {process_count}).")
  batch_size = global_batch_size // process_count
  n = len(source)
  mean, std = (None, None) if stats is None else (stats.mean, stats.std)
  collate = functools.partial(_collate, mean=mean, std=std)
  num_threads = num_threads or min(4, os.cpu_count() or 1)
  settings = {**(settings or {}), "seed": seed, "global_batch_size": global_batch_size}
  settings.update(process_index=process_index, process_count=process_count, train=train)
  if train:
    share = n // process_count
    if share < batch_size:
      raise ConfigError(
        f"Each of {process_count} process(es) holds {share} training examples, fewer than its "
        f"batch of {batch_size}; use global_batch_size <= {share * process_count}."
      )
    dataset = source[process_index * share : (process_index + 1) * share]
    dataset = dataset.shuffle(seed=seed).repeat(None)
    if augment is not None:
      dataset = dataset.random_map(augment, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True, batch_fn=collate)
  else:
    bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(n), process_count)])
    view = source[int(bounds[process_index]) : int(bounds[process_index + 1])]
    if eval_view is not None:
      view = view.map(lambda r: {**r, "image": eval_view(r["image"])})
    num_batches = math.ceil(math.ceil(n / process_count) / batch_size)
    make = functools.partial(_eval_batch, view=view, batch_size=batch_size, collate=collate)
    dataset = grain.MapDataset.range(num_batches).map(make)
  return DataIterator(dataset, settings, num_threads)


def create_iterator(
  name: str,
  split: "str | datasets.Split",
  *,
  global_batch_size: int,
  seed: int,
  train: bool,
  augment: str | Augment | None = None,
  data_dir: str | None = None,
  process_index: int | None = None,
  process_count: int | None = None,
  standardize: bool = False,
  num_threads: int | None = None,
) -> DataIterator:
  """Batches ``{'image': float32 (b, H, W, C), 'label': int32 (b,) or (b, H, W)}``, b the
  per-process batch ``global_batch_size / process_count``.

  Args:
    name, split: a dataset of :func:`research.data.get_info` and one of its splits (a stored
      split's name, or a :class:`research.data.Split` of :func:`research.data.run_splits`).
    global_batch_size: examples per step over all processes.
    seed: shuffling and augmentation seed; the same seed gives the same batches.
    train: shuffle per epoch, augment, repeat forever; else one ordered, padded, masked pass.
    augment: a preset name of :func:`host_augmentation`, a callable ``(example, rng) ->
      example``, or None for the dataset's default (:func:`default_augmentation`). Only used
      when ``train``.
    data_dir: the data directory (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
    process_index, process_count: this process's share (default ``jax.process_index()`` /
      ``jax.process_count()``).
    standardize: subtract the training split's per-channel mean and divide by its std
      (:func:`research.data.channel_stats`), AlexNet's mean subtraction.
    num_threads: worker threads decoding and augmenting ahead (default min(4, CPUs)).
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  source = datasets.open_source(name, split, data_dir)  # raises first if the data is missing
  preset = default_augmentation(name) if augment is None else augment
  need_stats = standardize or (train and preset == "alexnet")
  stats = datasets.channel_stats(name, data_dir) if need_stats else None
  host_fn = None
  if train:
    host_fn = host_augmentation(preset, stats) if isinstance(preset, str) else preset
    host_fn = None if preset == "none" else host_fn
  return make_iterator(
    source,
    global_batch_size=global_batch_size,
    seed=seed,
    train=train,
    augment=host_fn,
    eval_view=functools.partial(datasets.eval_view, name),
    stats=stats if standardize else None,
    process_index=process_index,
    process_count=process_count,
    settings={"name": name, "split": split.key if isinstance(split, datasets.Split) else split},
    num_threads=num_threads,
  )
