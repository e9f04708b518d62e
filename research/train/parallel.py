"""Data parallelism: `jax.jit` of a `jax.shard_map` over a one-axis mesh named 'batch'.

Why shard_map under jit rather than `jax.pmap`: in JAX 0.10 pmap is itself built on jit +
shard_map, and jit + shard_map gives ordinary global `jax.Array`s. Those go straight into Orbax
(saved and restored with their shardings), span hosts without per-host reshaping (each process
contributes its local rows through `jax.make_array_from_process_local_data`), and never mix
pmap-style and mesh-style arrays (a trap on this stack). Inside the step the per-device view of
pmap is kept: the batch axis is split across devices, `axis_name='batch'` averages gradients,
BatchNorm statistics and metrics, and `axis_index('batch')` folds the dropout key per device.

`check_vma=False`, with the classic grad-then-`pmean`: under the default `check_vma=True` the
gradient of a replicated parameter is already summed over devices and a second pmean would make
it N times too large (tests compare with the single-device gradient of the global batch).
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from research.errors import ConfigError

AXIS = "batch"


def create_mesh(
  num_devices: int | None = None, devices: Sequence[jax.Device] | None = None
) -> Mesh:
  """A 1-D mesh ('batch',) over all devices of all processes, or the first `num_devices`.

  `num_devices` (single process only) runs on a subset, e.g. 1 device to compare with 8.
  """
  devices = list(devices if devices is not None else jax.devices())
  if num_devices:
    if jax.process_count() > 1:
      raise ConfigError(
        f"num_devices={num_devices} selects a subset of devices, which only works "
        f"with one process (got {jax.process_count()}); set num_devices=0"
      )
    if num_devices > len(devices):
      raise ConfigError(
        f"num_devices={num_devices} but only {len(devices)} devices exist; "
        f"use at most {len(devices)} (0 means all)"
      )
    devices = devices[:num_devices]
  return Mesh(np.array(devices), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(AXIS))


def replicate(tree, mesh: Mesh):
  """Places every leaf of `tree` (identical on all processes) on all mesh devices."""
  return jax.device_put(tree, replicated(mesh))


def local_device_count(mesh: Mesh) -> int:
  return sum(d.process_index == jax.process_index() for d in mesh.devices.flat)


def put_batch(batch: dict, mesh: Mesh) -> dict:
  """This process's rows (local_batch, ...) -> global arrays (global_batch, ...) split on 'batch'.

  Each process passes only its share; rows are laid out process by process, device by device.
  """
  sharding = batch_sharded(mesh)
  return jax.tree.map(
    lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
  )


def data_parallel(fn: Callable, mesh: Mesh, *, out_specs, donate_state: bool = False) -> Callable:
  """jit(shard_map(fn)) for fn(state, batch): state replicated, batch split over 'batch'.

  `donate_state` donates the state's buffers to the output (the caller must not read the
  state it passed in afterwards).
  """
  mapped = jax.shard_map(
    fn, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=out_specs, check_vma=False
  )
  return jax.jit(mapped, donate_argnums=(0,) if donate_state else ())


def data_parallel_train_step(train_step: Callable, mesh: Mesh, *, donate: bool = False) -> Callable:
  """(state, batch) -> (state, metrics), both replicated.

  With `donate` the new state reuses the old one's device memory: no allocation per step
  (on an H100, `experiments.benchmarks.train_step --donate` doubled ResNet-20's throughput), but
  the state passed in is deleted; keep a `copy` of it if something still reads it (a save).
  """
  return data_parallel(train_step, mesh, out_specs=(P(), P()), donate_state=donate)


@jax.jit
def copy(tree):
  """A device-side copy of `tree` in new buffers, same shardings (safe from later donation)."""
  return jax.tree.map(jnp.copy, tree)


def data_parallel_eval_step(eval_step: Callable, mesh: Mesh) -> Callable:
  """(state, batch) -> psum-ed metric sums, replicated."""
  return data_parallel(eval_step, mesh, out_specs=P())


def fetch(tree):
  """Host NumPy copy of a replicated tree (works when devices span several processes)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)
