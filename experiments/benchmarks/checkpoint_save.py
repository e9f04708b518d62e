"""How long does an asynchronous Orbax save block the training step?

    python -m experiments.benchmarks.checkpoint_save                 # resnet20, resnet56, mlp_25m
    python -m experiments.benchmarks.checkpoint_save --models=resnet20 --repeats=5

For each model, a real TrainState (params, batch_stats, SGD-momentum state, rng) replicated on
the devices is saved through `research.train.checkpoint.save` (the code the loop uses) and timed:

  blocked   the time `Saver.save` takes to return, i.e. how long the loop waits before its next
            step (Orbax's async `save` called from a worker thread, as the loop does);
  orbax     the same for Orbax's async `CheckpointManager.save` called directly (what the loop
            does with several processes);
  total     until the checkpoint is complete on disk;
  copy      `jax.device_get(state)`: copying the state off the device into new host buffers
            (the least any save has to do before the step may overwrite the arrays);
  raw write writing the same bytes with NumPy to the same disk (one file, no Orbax).

Printed: leaves, bytes, each time (median over --repeats), blocked / copy (target <= 1.0),
orbax / copy and total / raw write. On a CPU the "device" is host memory, so the copy is a memcpy.
"""

import argparse
import datetime
import os
import platform
import shutil
import tempfile
import time

import jax
import numpy as np
import optax

from research import models
from research.train import checkpoint, parallel
from research.train import state as state_lib

# name -> (research.models name, kwargs, image shape)
MODELS = {
  "resnet20": ("resnet20", {}, (32, 32, 3)),
  "resnet56": ("resnet56", {}, (32, 32, 3)),
  "mlp_25m": ("mlp", {"depth": 2, "width": 4096}, (32, 32, 3)),
}


def make_state(name: str, mesh):
  model_name, kwargs, shape = MODELS[name]
  model = models.create(model_name, num_classes=10, **kwargs)
  variables = state_lib.init_variables(model, jax.random.PRNGKey(0), shape)
  tx = optax.sgd(0.1, momentum=0.9)
  state = state_lib.create_train_state(dict(variables), tx, None, jax.random.PRNGKey(1))
  return parallel.replicate(state, mesh)


def state_bytes(state) -> int:
  return int(sum(x.nbytes for x in jax.tree.leaves(state)))


def time_copy(state) -> float:
  start = time.perf_counter()
  host = jax.device_get(state)
  # device_get may hand back a view of CPU device memory; a real copy is what a save needs.
  host = jax.tree.map(lambda x: np.array(x, copy=True), host)
  return time.perf_counter() - start


def time_raw_write(state, directory: str) -> float:
  host = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state))]
  path = os.path.join(directory, "raw.npz")
  start = time.perf_counter()
  with open(path, "wb") as f:
    np.savez(f, *host)
    f.flush()
    os.fsync(f.fileno())
  elapsed = time.perf_counter() - start
  os.remove(path)
  return elapsed


def time_save(
  state, directory: str, repeats: int, background: bool
) -> tuple[list[float], list[float]]:
  """(blocked, total) seconds per save through `checkpoint.Saver` (the loop's saver)."""
  saver = checkpoint.Saver(checkpoint.create_manager(directory, keep=2), background=background)
  blocked, total = [], []
  for step in range(1, repeats + 2):
    jax.block_until_ready(state)
    start = time.perf_counter()
    saver.save(step, state, {"data": {"next_batch": step}})
    returned = time.perf_counter()
    saver.wait()
    done = time.perf_counter()
    if step > 1:  # the first save also creates directories and metadata
      blocked.append(returned - start)
      total.append(done - start)
  saver.close()
  return blocked, total


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--models", default=",".join(MODELS))
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
  args = parser.parse_args()
  mesh = parallel.create_mesh()
  root = args.dir or tempfile.mkdtemp(prefix="ckpt_bench_")
  print(
    f"date {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {platform.node()}; "
    f"{os.cpu_count()} CPUs; {jax.device_count()} {jax.devices()[0].platform} device(s); "
    f"jax {jax.__version__}; writing under {root}"
  )
  header = (
    f"{'model':9} {'leaves':>6} {'MB':>7} {'copy ms':>8} {'blocked ms':>10} "
    f"{'orbax ms':>9} {'total ms':>9} {'raw ms':>7} {'blocked/copy':>12} "
    f"{'orbax/copy':>10} {'total/raw':>9}"
  )
  print(header)
  for name in args.models.split(","):
    state = make_state(name, mesh)
    copies = [time_copy(state) for _ in range(args.repeats)]
    raws = [time_raw_write(state, root) for _ in range(args.repeats)]
    blocked, total = time_save(state, os.path.join(root, name), args.repeats, True)
    direct, _ = time_save(state, os.path.join(root, name + "_direct"), args.repeats, False)
    copy, raw = float(np.median(copies)), float(np.median(raws))
    b, o, t = float(np.median(blocked)), float(np.median(direct)), float(np.median(total))
    print(
      f"{name:9} {len(jax.tree.leaves(state)):6d} {state_bytes(state) / 2**20:7.1f} "
      f"{copy * 1e3:8.1f} {b * 1e3:10.2f} {o * 1e3:9.1f} {t * 1e3:9.1f} {raw * 1e3:7.1f} "
      f"{b / copy:12.3f} {o / copy:10.2f} {t / raw:9.2f}",
      flush=True,
    )
  if not args.dir:
    shutil.rmtree(root)


if __name__ == "__main__":
  main()
