"""The training engine: many train steps per dispatch, batches built on the device.

A dispatch is one call of a jitted program that runs `num_steps` train steps in a
`lax.while_loop` inside `shard_map` (the data-parallel view of `parallel`). `num_steps` is an
argument, not a constant, so every dispatch length runs the same compiled program: results do
not depend on how the steps are grouped (K = 1 and K = 8 end bit-identical), and one
compilation serves the whole run. Per-step metrics are added up on the device (over the steps
whose loss is finite, with the count of the others and the first non-finite step), so the
host reads a handful of numbers per dispatch.

Two feeds:

* memory: the split lives in device memory (`put_split`) and each step gathers, augments and
  converts its own rows (`research.data.device`): nothing of the input runs in Python. Each
  device holds a full copy of its process's share (replicated within a process, disjoint
  across processes), rather than a shard of it: every device can then gather any row of the
  process's batch locally, so a batch is the same examples on 1 or 8 devices (the two agree
  to float tolerance) and no step needs an all-to-all exchange. The price is the split's bytes
  on every device, which is why only splits under `dataset.in_memory_limit_mb` go there.
* host: the host pipeline's batches for the dispatch are stacked, (K, B, ...), and step i of
  the dispatch reads batch i (for what does not fit in memory, e.g. ImageNet).

Row r of the process batch is computed by the device in slot r // (b / local devices) (its
position among its process's devices); each device knows its slot and its process's keys
through `DeviceInput`, one row per device.
"""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from research.data import device as device_data
from research.train import parallel

AXIS = parallel.AXIS


class DeviceInput(NamedTuple):
  """Per-device input constants, global arrays of one row per device, split over 'batch'."""

  slot: jax.Array  # (D,) int32: the device's position among its process's devices
  shuffle_key: jax.Array  # (D, 2) uint32: the process's shuffle stream
  augment_key: jax.Array  # (D, 2) uint32: the process's augmentation stream


class MemorySplit(NamedTuple):
  """A process's share of a split in device memory: every device of the process holds it all.

  As global arrays split over 'batch', each device's shard is the whole share: images
  (D * n, H, W, C), labels (D * n, ...); `count` (D,) is the number of real examples of the
  share (an evaluation share is padded to the longest process's).
  """

  images: jax.Array
  labels: jax.Array
  count: jax.Array
  device: DeviceInput


def _local_devices(mesh: Mesh) -> list[jax.Device]:
  return [d for d in mesh.devices.flat if d.process_index == jax.process_index()]


def _per_device(values: list[np.ndarray], mesh: Mesh) -> jax.Array:
  """A global array whose shard on the i-th local device (mesh order) is values[i]."""
  devices = _local_devices(mesh)
  shape = (mesh.size * values[0].shape[0], *values[0].shape[1:])
  arrays = [jax.device_put(v, d) for v, d in zip(values, devices, strict=True)]
  return jax.make_array_from_single_device_arrays(shape, parallel.batch_sharded(mesh), arrays)


def device_input(mesh: Mesh, seed: int | Sequence[int]) -> DeviceInput:
  """Slots and this process's (shuffle, augment) keys from (seed, process index).

  A sequence of seeds (one per trial of a sweep) gives keys (D, T, 2) instead of (D, 2).
  """
  if isinstance(seed, int):
    shuffle, augment = (np.asarray(k) for k in device_data.stream_keys(seed, jax.process_index()))
  else:
    pairs = [device_data.stream_keys(s, jax.process_index()) for s in seed]
    shuffle, augment = (np.stack([np.asarray(p[i]) for p in pairs]) for i in (0, 1))
  count = len(_local_devices(mesh))
  return DeviceInput(
    slot=_per_device([np.array([i], np.int32) for i in range(count)], mesh),
    shuffle_key=_per_device([shuffle[None]] * count, mesh),
    augment_key=_per_device([augment[None]] * count, mesh),
  )


def put_split(
  images: np.ndarray,
  labels: np.ndarray,
  mesh: Mesh,
  seed: int | Sequence[int],
  pad_to: int | None = None,
) -> MemorySplit:
  """Copies this process's share (images (n, ...), labels (n, ...)) to each of its devices.

  `pad_to` pads the share with copies of example 0 to that many rows (evaluation shares of
  unequal length; the padding is masked by `count`).
  """
  count = len(images)
  if pad_to is not None and pad_to > count:
    images = np.concatenate([images, np.repeat(images[:1], pad_to - count, 0)])
    labels = np.concatenate([labels, np.repeat(labels[:1], pad_to - count, 0)])
  local = len(_local_devices(mesh))
  return MemorySplit(
    images=_per_device([images] * local, mesh),
    labels=_per_device([labels] * local, mesh),
    count=_per_device([np.array([count], np.int32)] * local, mesh),
    device=device_input(mesh, seed),
  )


def _specs(tree, spec):
  return jax.tree.map(lambda _: spec, tree)


class Shapes(NamedTuple):
  """Static sizes of a data-parallel batch."""

  per_process: int  # b: rows of the global batch each process provides
  per_device: int  # rows each device computes

  @classmethod
  def of(cls, global_batch_size: int, mesh: Mesh) -> "Shapes":
    per_process = global_batch_size // jax.process_count()
    return cls(per_process, per_process // len(_local_devices(mesh)))

  def rows(self, slot: jax.Array) -> jax.Array:
    """The rows (per_device,) of the process batch that the device in `slot` computes."""
    return slot * self.per_device + jnp.arange(self.per_device, dtype=jnp.int32)


# ----------------------------------------------------------------------------- training


def _zeros_like_shapes(shapes):
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


LOOPS = ("auto", "while", "calls")


class Counters(NamedTuple):
  """Step counts of a dispatch (() int32 each)."""

  finite: jax.Array  # steps whose loss is finite
  nonfinite: jax.Array  # the others
  first_nonfinite: jax.Array  # the step index of the first of them, or -1
  run: jax.Array  # non-finite steps in a row at the end (continuing the previous dispatch's)
  longest_run: jax.Array  # the longest such run, counting the previous dispatch's last one

  @classmethod
  def start(cls, run, shape=()):
    zero = jnp.zeros(shape, jnp.int32)
    run = jnp.broadcast_to(jnp.asarray(run, jnp.int32), shape)
    return cls(zero, zero, jnp.full(shape, -1, jnp.int32), run, run)

  def add(self, step, finite) -> "Counters":
    run = jnp.where(finite, 0, self.run + 1)
    return Counters(
      self.finite + finite,
      self.nonfinite + ~finite,
      jnp.where((self.first_nonfinite < 0) & ~finite, step, self.first_nonfinite),
      run,
      jnp.maximum(self.longest_run, run),
    )


class Carry(NamedTuple):
  """What a dispatch carries from step to step (per device)."""

  i: jax.Array  # () int32: steps done in this dispatch
  orders: Any  # `EpochOrders` with a leading axis of 1 (memory feed), else ()
  sums: dict  # each metric summed over the steps with a finite loss
  counters: Counters
  first_loss: jax.Array  # () float32: the loss of the dispatch's first step
  records: Any  # (record_steps, ...) per-step metrics, or ()


def _has_convolution(jaxpr) -> bool:
  """Whether a (closed) jaxpr or any jaxpr nested in its equations has a convolution."""
  jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "conv_general_dilated":
      return True
    for value in eqn.params.values():
      for sub in value if isinstance(value, list | tuple) else (value,):
        if hasattr(sub, "eqns") or hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
          if _has_convolution(sub):
            return True
  return False


def make_train_dispatch(
  train_step: Callable,
  mesh: Mesh,
  *,
  global_batch_size: int,
  feed: str,
  num_examples: int | None = None,
  augment: Any = "none",
  stats: dict | None = None,
  max_nonfinite_run: int | None = 0,
  record_steps: int = 0,
  donate: bool = True,
  loop: str = "auto",
  trials: int | None = None,
) -> "TrainDispatch":
  """Returns dispatch(state, data, num_steps) -> (state, out) over the mesh.

  Args:
    train_step: `steps.make_train_step(...)`, a per-device (state, batch) -> (state, metrics).
    mesh: the one-axis mesh ('batch',).
    global_batch_size: examples per step over all devices and processes.
    feed: 'memory' (data is a `MemorySplit`; `num_examples` rows per device) or 'host' (data
      is a dict of stacked batches (K, global batch, ...), split on axis 1).
    augment: a preset of `research.data.device` or an example function (memory feed only).
    stats: {'mean', 'std'} standardization and {'eigenvalues', 'eigenvectors'} (alexnet), or
      None.
    max_nonfinite_run: end the dispatch once more than this many steps in a row had a loss
      that is not finite (0: at the first; None: never).
    record_steps: > 0 also returns every step's metrics, (record_steps, ...) each, rows past
      `num_steps` zero (for figures that plot per-step curves).
    donate: the state's buffers are reused for the result (the caller must not read the state
      it passed in afterwards).
    loop: 'while' runs the dispatch's steps in one `lax.while_loop` (one call); 'calls' calls
      a one-step program `num_steps` times, the metric sums staying on the device; 'auto'
      takes 'calls' on XLA:CPU when the step has convolutions, else 'while'. (XLA:CPU
      compiles a convolution's weight gradient inside a loop body without its fast path,
      jax#12868: a ResNet-20 step runs 16x slower in a loop here; on GPU and TPU loops are
      fine.) Either way each step is the same program whatever `num_steps` is.
    trials: T trials of a sweep at once: `train_step` is vmapped over a leading trial axis of
      the state and the batch, the split's keys are (D, T, 2) (`put_split(seed=[...])`), every
      metric and count comes back with a trial axis; needs `max_nonfinite_run=None`.

  `out` holds 'sums' (each metric summed over the steps with a finite loss), 'done' (the steps
  run), 'steps' (those with a finite loss), 'nonfinite' (the others), 'first_nonfinite' (the
  step index of the first, or -1), 'run' (non-finite steps in a row at the end), 'longest_run',
  'first_loss' (the loss of its first step) and, with `record_steps`, 'records'.
  `dispatch.loop` tells the mode chosen (after the first call for 'auto').
  """
  shapes = Shapes.of(global_batch_size, mesh)
  if feed == "memory":
    device_data.check_preset(augment)
    device_data.check_stream(num_examples, shapes.per_process)
  elif feed != "host":
    raise ValueError(f"feed={feed!r} must be 'memory' or 'host'")
  if loop not in LOOPS:
    raise ValueError(f"loop={loop!r} must be one of {LOOPS}")
  if trials and (feed != "memory" or max_nonfinite_run is not None):
    raise ValueError(
      "trials need the memory feed and max_nonfinite_run=None (a diverging "
      "trial must not stop the others)"
    )
  steps = _Steps(
    train_step,
    shapes,
    feed,
    num_examples,
    augment,
    {k: jnp.asarray(v) for k, v in (stats or {}).items()},
    record_steps,
    trials,
  )
  return TrainDispatch(steps, mesh, max_nonfinite_run, donate, loop)


class _Steps(NamedTuple):
  """The per-device computation of a dispatch: batches, one step, the carry (traced only)."""

  train_step: Callable
  shapes: Shapes
  feed: str
  num_examples: int | None
  augment: Any
  stats: dict
  record_steps: int
  trials: int | None

  def memory_batch(self, data, shuffle_key, augment_key, step, orders):
    """One trial's batch of `step` and its orders moved to the step's epoch."""
    per_process, n = self.shapes.per_process, self.num_examples
    orders = device_data.advance(orders, shuffle_key, step, per_process, n)
    return self.batch_at(data, augment_key, step, orders), orders

  def batch_at(self, data, augment_key, step, orders):
    """One trial's batch of `step`, its orders already at the step's epoch."""
    shapes, n, stats = self.shapes, self.num_examples, self.stats
    rows = shapes.rows(data.device.slot[0])
    index = device_data.batch_indices(orders, step, rows, shapes.per_process, n)
    keys = device_data.row_keys(augment_key, step, rows)
    batch = device_data.prepare(
      self.augment,
      keys,
      data.images[index],
      data.labels[index],
      mean=stats.get("mean"),
      std=stats.get("std"),
      eigenvalues=stats.get("eigenvalues"),
      eigenvectors=stats.get("eigenvectors"),
    )
    return batch

  def get_batch(self, data, i, step, orders):
    """The batch of `step` (the dispatch's i-th) and the orders moved to its epoch.

    With `trials`, every trial has its own keys, step and orders, and the batch a leading trial
    axis (T, b, ...).
    """
    if self.feed == "host":
      return jax.tree.map(lambda x: x[i], data), orders
    shuffle_key, augment_key = data.device.shuffle_key[0], data.device.augment_key[0]
    orders = jax.tree.map(lambda x: x[0], orders)
    if not self.trials:
      batch, orders = self.memory_batch(data, shuffle_key, augment_key, step, orders)
    else:
      # Under vmap `advance`'s cond becomes a select that computes new epoch orders (two
      # permutations of the split) for every trial at every step. Decide outside the vmap:
      # only on a step where some trial enters a new epoch is each trial's `advance` run.
      advance = jax.vmap(
        functools.partial(
          device_data.advance, batch_size=self.shapes.per_process, n=self.num_examples
        )
      )
      epochs = jax.vmap(
        lambda s: device_data.stream_position(s, self.shapes.per_process, self.num_examples)[0]
      )(step)
      orders = jax.lax.cond(
        jnp.any(epochs != orders.epoch),
        lambda: advance(orders, shuffle_key, step),
        lambda: orders,
      )
      batch = jax.vmap(functools.partial(self.batch_at, data))(augment_key, step, orders)
    return batch, jax.tree.map(lambda x: x[None], orders)

  def first_orders(self, state, data):
    if self.feed == "host":
      return ()
    per_process, n = self.shapes.per_process, self.num_examples

    def one(shuffle_key, step):
      epoch, _ = device_data.stream_position(step, per_process, n)
      return device_data.orders_at(shuffle_key, epoch, n)

    orders = (jax.vmap(one) if self.trials else one)(data.device.shuffle_key[0], state.step)
    return jax.tree.map(lambda x: x[None], orders)

  def step_metrics(self, state, data):
    """One step's metrics, for `TrainDispatch.probe` (traced, never compiled)."""
    batch, _ = self.get_batch(data, 0, state.step, self.first_orders(state, data))
    return self.train_step(state, batch)[1]

  def start(self, metric_shapes, state, data, run) -> Carry:
    records = (
      jax.tree.map(lambda s: jnp.zeros((self.record_steps, *s.shape), s.dtype), metric_shapes)
      if self.record_steps
      else ()
    )
    per_trial = (self.trials,) if self.trials else ()
    return Carry(
      jnp.zeros((), jnp.int32),
      self.first_orders(state, data),
      _zeros_like_shapes(metric_shapes),
      Counters.start(run, per_trial),
      jnp.zeros(per_trial, jnp.float32),
      records,
    )

  def one_step(self, state, data, carry: Carry):
    step = state.step
    batch, orders = self.get_batch(data, carry.i, step, carry.orders)
    state, metrics = self.train_step(state, batch)
    finite = jnp.isfinite(metrics["loss"])
    sums = jax.tree.map(
      lambda s, m: s + jnp.where(finite, m, jnp.zeros_like(m)), carry.sums, metrics
    )
    records = carry.records
    if self.record_steps:
      records = jax.tree.map(lambda r, m: r.at[carry.i].set(m), records, metrics)
    first_loss = jnp.where(carry.i == 0, metrics["loss"].astype(jnp.float32), carry.first_loss)
    return state, Carry(
      carry.i + 1, orders, sums, carry.counters.add(step, finite), first_loss, records
    )

  def finish(self, carry: Carry) -> dict:
    c = carry.counters
    out = {
      "sums": carry.sums,
      "done": carry.i,
      "steps": c.finite,
      "nonfinite": c.nonfinite,
      "first_nonfinite": c.first_nonfinite,
      "run": c.run,
      "longest_run": c.longest_run,
      "first_loss": carry.first_loss,
    }
    if self.record_steps:
      out["records"] = carry.records
    return out

  def data_specs(self, data):
    return _specs(data, P(AXIS) if self.feed == "memory" else P(None, AXIS))


# A prefix of the carry: the orders are per device, the rest is the same on every device.
_CARRY_SPECS = Carry(i=P(), orders=P(AXIS), sums=P(), counters=P(), first_loss=P(), records=P())


class TrainDispatch:
  """dispatch(state, data, num_steps, *, run=0, stop=None) -> (state, out): see
  `make_train_dispatch`. Its programs are compiled on the first call, after one trace (`probe`)
  that gives the metrics' shapes and, for loop='auto', the loop mode."""

  def __init__(self, steps: _Steps, mesh: Mesh, max_nonfinite_run, donate: bool, loop: str):
    self.steps, self.mesh = steps, mesh
    self.max_nonfinite_run = max_nonfinite_run
    self.loop = loop
    self.metric_shapes = None  # set by the first call's `probe`
    self._while_program = jax.jit(self._while, donate_argnums=(0,) if donate else ())
    self._start_program = jax.jit(self._start)
    self._step_program = jax.jit(self._step, donate_argnums=(0, 2) if donate else (2,))
    self._finish_program = jax.jit(steps.finish)

  def _mapped(self, fn, in_specs, out_specs):
    return jax.shard_map(
      fn, mesh=self.mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False
    )

  def _run_while(self, state, data, num_steps, run):
    steps, limit = self.steps, self.max_nonfinite_run

    def cond(args):
      _, carry = args
      keep = carry.i < num_steps
      if limit is None:
        return keep
      return keep & (carry.counters.longest_run <= limit)

    start = steps.start(self.metric_shapes, state, data, run)
    state, carry = jax.lax.while_loop(
      cond, lambda args: steps.one_step(args[0], data, args[1]), (state, start)
    )
    return state, steps.finish(carry)

  def _while(self, state, data, num_steps, run):
    specs = (P(), self.steps.data_specs(data), P(), P())
    return self._mapped(self._run_while, specs, (P(), P()))(state, data, num_steps, run)

  def _start(self, state, data, run):
    start = functools.partial(self.steps.start, self.metric_shapes)
    specs = (P(), self.steps.data_specs(data), P())
    return self._mapped(start, specs, _CARRY_SPECS)(state, data, run)

  def _step(self, state, data, carry):
    specs = (P(), self.steps.data_specs(data), _CARRY_SPECS)
    return self._mapped(self.steps.one_step, specs, (P(), _CARRY_SPECS))(state, data, carry)

  def probe(self, state, data) -> None:
    """One trace of a step: the shapes of its metrics and whether it has convolutions."""
    program = self._mapped(self.steps.step_metrics, (P(), self.steps.data_specs(data)), P())
    jaxpr, self.metric_shapes = jax.make_jaxpr(program, return_shape=True)(state, data)
    if self.loop == "auto":
      on_cpu = self.mesh.devices.flat[0].platform == "cpu"
      self.loop = "calls" if on_cpu and _has_convolution(jaxpr) else "while"

  def __call__(self, state, data, num_steps, *, run=0, stop: Callable[[], bool] | None = None):
    """Runs up to `num_steps` steps; `run`: the previous dispatch's trailing non-finite run.

    `stop()` (one-step calls only) is asked before each step; True ends the dispatch there.
    """
    if self.metric_shapes is None:
      self.probe(state, data)
    run = np.int32(run)
    if self.loop == "while":
      return self._while_program(state, data, np.int32(num_steps), run)
    carry = self._start_program(state, data, run)
    for _ in range(int(num_steps)):
      if stop is not None and stop():
        break
      state, carry = self._step_program(state, data, carry)
    return state, self._finish_program(carry)


def stack_host_batches(batches: list[dict], mesh: Mesh) -> dict:
  """K host batches of this process's rows -> global arrays (K, global batch, ...) on axis 1."""
  sharding = jax.sharding.NamedSharding(mesh, P(None, AXIS))
  stacked = jax.tree.map(lambda *xs: np.stack(xs), *batches)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), stacked)


# ----------------------------------------------------------------------------- evaluation


def make_eval_dispatch(
  eval_step: Callable,
  mesh: Mesh,
  *,
  global_batch_size: int,
  num_examples: int,
  crop: int | None = None,
  stats: dict | None = None,
) -> Callable:
  """Returns evaluate(state, split) -> metric sums of one ordered pass over a `MemorySplit`.

  `num_examples`: rows of each process's (padded) share; each process evaluates its `count`
  real ones, in batches of global_batch_size / processes, masked as the host pipeline's last
  batch is. `crop`: the central crop of the evaluation view (ImageNet's 224), or None.
  """
  shapes = Shapes.of(global_batch_size, mesh)
  num_batches = math.ceil(num_examples / shapes.per_process)
  stats = stats or {}
  mean, std = (None if stats.get(k) is None else jnp.asarray(stats[k]) for k in ("mean", "std"))

  def run(state, split: MemorySplit):
    rows = shapes.rows(split.device.slot[0])

    def one(j):
      batch = device_data.eval_batch(
        split.images,
        split.labels,
        j * shapes.per_process,
        rows,
        split.count[0],
        crop=crop,
        mean=mean,
        std=std,
      )
      return eval_step(state, batch)

    total = _zeros_like_shapes(jax.eval_shape(one, 0))
    return jax.lax.fori_loop(0, num_batches, lambda j, t: jax.tree.map(jnp.add, t, one(j)), total)

  def evaluate(state, split):
    mapped = jax.shard_map(
      run, mesh=mesh, in_specs=(P(), _specs(split, P(AXIS))), out_specs=P(), check_vma=False
    )
    return mapped(state, split)

  return jax.jit(evaluate)
