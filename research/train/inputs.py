"""The run's input: each split served from device memory or by the host pipeline.

`plan_split` decides, from the dataset's info alone (nothing is read or compiled yet), where a
split is served: `dataset.in_memory='auto'` puts it in device memory when this process's share,
as uint8, fits `dataset.in_memory_limit_mb` (per process; every local device holds a copy of it,
see `research.train.engine`), `True` insists (an error if it does not fit), `False` keeps the
host pipeline (grain). Digits, MNIST, Fashion-MNIST, CIFAR-10/100 and the 128-pixel pet
segmentation set fit the default budget; ImageNet does not.

Shares: for training, process p holds records [p n, (p + 1) n) with n = N // processes (the
remainder is dropped, as in the host pipeline); for evaluation the near-equal parts of
`np.array_split` (nothing dropped), padded to the longest and masked.
"""

import math
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from research import data as data_lib
from research.errors import ConfigError
from research.train import engine

IN_MEMORY_CHOICES = ("auto", "true", "false")
# The stacked batches of one host-fed dispatch stay under this many bytes.
HOST_DISPATCH_LIMIT_BYTES = 256 << 20


def parse_in_memory(value) -> str:
  """'auto', 'true' or 'false' from a config value (a bool or one of those strings)."""
  text = str(value).lower()
  if text not in IN_MEMORY_CHOICES:
    raise ConfigError(f"dataset.in_memory={value!r} must be 'auto', True or False")
  return text


def run_splits(config: ml_collections.ConfigDict) -> data_lib.RunSplits:
  """The train, validation and test splits that `config.dataset` names
  (`research.data.run_splits`)."""
  dataset = config.dataset
  return data_lib.run_splits(
    dataset.name,
    dataset.validation,
    dataset.data_dir,
    train_split=dataset.train_split,
    test_split=dataset.test_split,
  )


class SplitPlan(NamedTuple):
  """Where and how one split is served to this process."""

  split: data_lib.Split
  train: bool
  in_memory: bool
  start: int  # this process's records [start, stop) of the split
  stop: int
  rows: int  # rows each device holds (the share, padded to the longest for evaluation)
  nbytes: int  # the share's bytes as uint8 records


def _share(num_examples: int, train: bool) -> tuple[int, int, int]:
  count, index = jax.process_count(), jax.process_index()
  if train:
    size = num_examples // count
    return index * size, (index + 1) * size, size
  bounds = np.cumsum([0] + [len(p) for p in np.array_split(np.arange(num_examples), count)])
  return int(bounds[index]), int(bounds[index + 1]), math.ceil(num_examples / count)


def plan_split(
  config: ml_collections.ConfigDict,
  info: data_lib.DatasetInfo,
  split: data_lib.Split,
  *,
  train: bool,
  batch_size: int,
) -> SplitPlan:
  """Decides where `split` (of `research.data.run_splits`) is served; raises ConfigError for a
  batch or budget that cannot work."""
  name = config.dataset.name
  start, stop, rows = _share(split.size, train)
  per_process = batch_size // jax.process_count()
  if train and rows < per_process:
    raise ConfigError(
      f"batch_size={batch_size} needs {per_process} training examples per process, but each "
      f"of {jax.process_count()} process(es) holds {rows} of {name}:{split.name}; use batch_size "
      f"<= {rows * jax.process_count()}"
    )
  nbytes = data_lib.split_nbytes(name, info, stop - start)
  setting = parse_in_memory(config.dataset.in_memory)
  limit_mb = config.dataset.in_memory_limit_mb
  if not isinstance(limit_mb, int | float) or limit_mb < 0:
    raise ConfigError(f"dataset.in_memory_limit_mb={limit_mb!r} must be a number >= 0")
  fits = nbytes <= limit_mb * 2**20
  if setting == "true" and not fits:
    raise ConfigError(
      f"dataset.in_memory=True but {name}:{split.name} needs {nbytes / 2**20:.1f} MB per device "
      f"(this process's {stop - start} records as uint8), over dataset.in_memory_limit_mb="
      f"{limit_mb}; raise the limit or set dataset.in_memory=auto"
    )
  return SplitPlan(
    split, train, setting == "true" or (setting == "auto" and fits), start, stop, rows, nbytes
  )


def preset(config: ml_collections.ConfigDict) -> str:
  """The training augmentation preset: dataset.augment, else the dataset's default."""
  return config.dataset.augment or data_lib.pipeline.default_augmentation(config.dataset.name)


def device_stats(config: ml_collections.ConfigDict) -> dict:
  """Standardization (mean, std) and PCA eigenpairs the device-side input needs."""
  name, standardize = config.dataset.name, config.dataset.standardize
  if not standardize and preset(config) != "alexnet":
    return {}
  stats = data_lib.channel_stats(name, config.dataset.data_dir)
  out = {"eigenvalues": stats.eigenvalues, "eigenvectors": stats.eigenvectors}
  if standardize:
    out.update(mean=stats.mean, std=stats.std)
  return out


def _load(config, plan: SplitPlan, mesh: Mesh, seeds=None) -> engine.MemorySplit:
  images, labels = data_lib.load_split(
    config.dataset.name, plan.split, config.dataset.data_dir, plan.start, plan.stop
  )
  return engine.put_split(
    images,
    labels,
    mesh,
    config.seed if seeds is None else seeds,
    pad_to=None if plan.train else plan.rows,
  )


class TrainInput:
  """Feeds the train dispatches: `feed(num_steps)` is the dispatch's `data` argument."""

  def __init__(
    self,
    config: ml_collections.ConfigDict,
    plan: SplitPlan,
    mesh: Mesh,
    seeds: list[int] | None = None,
  ):
    """`seeds`: one per trial of a vectorized sweep (memory feed only): per-trial orders."""
    self.plan, self.mesh, self.config = plan, mesh, config
    if plan.in_memory:
      self.split = _load(config, plan, mesh, seeds)
      self.iterator = None
    else:
      self.split = None
      self.iterator = data_lib.create_iterator(
        config.dataset.name,
        plan.split,
        global_batch_size=config.batch_size,
        seed=config.seed,
        train=True,
        augment=config.dataset.augment,
        data_dir=config.dataset.data_dir,
        standardize=config.dataset.standardize,
      )

  @property
  def feed_kind(self) -> str:
    return "memory" if self.plan.in_memory else "host"

  def host_steps(self, steps: int) -> int:
    """The largest divisor of `steps` whose stacked host batches fit HOST_DISPATCH_LIMIT_BYTES."""
    if self.plan.in_memory:
      return steps
    info = data_lib.get_info(self.config.dataset.name, self.config.dataset.data_dir)
    batch_bytes = self.config.batch_size // jax.process_count() * 4 * math.prod(info.image_shape)
    fitting = max(1, HOST_DISPATCH_LIMIT_BYTES // max(batch_bytes, 1))
    return max(d for d in range(1, steps + 1) if steps % d == 0 and d <= fitting)

  def feed(self, num_steps: int, pad_to: int) -> Any:
    """The dispatch's data for `num_steps` steps (host batches stacked, padded to `pad_to`)."""
    if self.plan.in_memory:
      return self.split
    batches = [next(self.iterator) for _ in range(num_steps)]
    batches += [batches[-1]] * (pad_to - num_steps)  # never read: the loop stops at num_steps
    return engine.stack_host_batches(batches, self.mesh)

  def get_state(self) -> dict:
    return {} if self.iterator is None else self.iterator.get_state()

  def set_state(self, state: dict) -> None:
    if self.iterator is not None:
      self.iterator.set_state({**state, "process_index": jax.process_index()})


class EvalInput:
  """Evaluates a state over the whole evaluation split: `evaluate(state) -> sums` (host)."""

  def __init__(self, config: ml_collections.ConfigDict, plan: SplitPlan, mesh: Mesh, eval_step):
    self.plan, self.mesh, self.config = plan, mesh, config
    self.batch_size = config.eval_batch_size or config.batch_size
    if plan.in_memory:
      self.split = _load(config, plan, mesh)
      stats = {k: v for k, v in device_stats(config).items() if k in ("mean", "std")}
      self._evaluate = engine.make_eval_dispatch(
        eval_step,
        mesh,
        global_batch_size=self.batch_size,
        num_examples=plan.rows,
        crop=data_lib.eval_crop(config.dataset.name),
        stats=stats,
      )
    else:
      self._step = engine.parallel.data_parallel_eval_step(eval_step, mesh)

  def __call__(self, state) -> dict:
    """Metric sums (NumPy) over the split's real examples."""
    if self.plan.in_memory:
      return engine.parallel.fetch(self._evaluate(state, self.split))
    config = self.config
    iterator = data_lib.create_iterator(
      config.dataset.name,
      self.plan.split,
      global_batch_size=self.batch_size,
      seed=config.seed,
      train=False,
      data_dir=config.dataset.data_dir,
      standardize=config.dataset.standardize,
    )
    total = None
    for batch in iterator:
      sums = engine.parallel.fetch(self._step(state, engine.parallel.put_batch(batch, self.mesh)))
      total = sums if total is None else jax.tree.map(np.add, total, sums)
    return total
