"""The whole training program against its step alone and a hand-written JAX loop, per step.

    python -m experiments.benchmarks.train_loop [--workloads mlp_digits mlp_fashion resnet20]
        [--repeats=2] [--json=PATH]

For each workload, in one run:

1. loop: the marginal cost of one more step of the whole `python -m research.main` process,
   (wall(N2) - wall(N1)) / (N2 - N1), each run a fresh process with the workload's config,
   evaluation and checkpoint only at the end (so the difference is training steps), the best
   of `--repeats` (after one warm-up run that fills the compilation cache, so both runs find
   their programs there; N2 - N1 is some seconds of training, so that a process's start-up
   jitter of a few tenths of a second stays small beside it). The main job's default intervals
   (eval and checkpoint every 200 steps) are measured the same way in `mlp_digits_default`.
2. step: the library's jitted train step alone (`parallel.data_parallel_train_step` of
   `steps.make_train_step`, donated), one call per step on one fixed device batch.
3. hand: a minimal hand-written JAX loop: `jax.jit` of value_and_grad + an optax update, one call
   per step, batches gathered in NumPy from arrays in host memory (a new permutation each
   epoch), converted to float and `device_put` each step.

Workloads: `mlp_digits` (the main job's MLP, Adam, batch 64, scikit-learn digits),
`mlp_fashion` (the same MLP on Fashion-MNIST's 60,000 28x28 images, batch 128; needs the Debian
package dataset-fashion-mnist), `resnet20` (ResNet-20, heavy-ball SGD, batch 128, crop + flip,
on 10,000 random 32x32x3 uint8 images written as an IDX directory, through the in-memory path).
Ratios printed: loop / step and loop / hand (steps/s over steps/s; > 1 means the loop is
faster). The host pipeline (grain) that serves what does not fit in memory is measured too:
examples/s of `create_iterator` on digits and Fashion-MNIST, and per core.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MLP_CONFIG = os.path.join(REPO, "experiments", "configs", "mlp_digits.py")
RESNET_CONFIG = os.path.join(REPO, "experiments", "configs", "cifar10_resnet.py")


def workloads(synthetic_dir: str) -> dict:
  """name -> (config file, overrides, (N1, N2), step_setup kwargs)."""
  mlp = ["--config.model.dropout_rate=0.0"]
  return {
    "mlp_digits": (MLP_CONFIG, mlp, (600, 12600), dict(dataset="digits", batch=64)),
    "mlp_digits_default": (
      MLP_CONFIG,
      mlp + ["--config.eval_every_steps=200", "--config.checkpoint_every_steps=200"],
      (600, 12600),
      dict(dataset="digits", batch=64),
    ),
    "mlp_fashion": (
      MLP_CONFIG,
      mlp + ["--config.dataset.name=fashion_mnist_idx", "--config.batch_size=128"],
      (400, 3400),
      dict(dataset="fashion_mnist_idx", batch=128),
    ),
    "resnet20": (
      f"{RESNET_CONFIG}:resnet20",
      [
        f"--config.dataset.name=idx:{synthetic_dir}",
        "--config.dataset.standardize=False",
        "--config.optimizer.weight_decay=0.0",
      ],
      (4, 16),
      dict(dataset=f"idx:{synthetic_dir}", batch=128),
    ),
  }


def write_synthetic(directory: str, n: int = 10_000) -> None:
  from research.data import idx

  rng = np.random.default_rng(0)
  idx.write_split_dir(
    directory,
    {
      "train": (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)),
      "test": (rng.integers(0, 256, (512, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 512)),
    },
  )


def main_wall(
  config: str, overrides: list[str], steps: int, workdir: str, default_intervals: bool
) -> float:
  """Wall seconds of one whole `research.main` process training `steps` steps."""
  flags = [
    f"--config.num_train_steps={steps}",
    "--config.progress_bar=False",
    "--config.tensorboard=False",
    "--config.log_every_steps=100",
  ]
  if not default_intervals:
    flags += [f"--config.eval_every_steps={steps}", f"--config.checkpoint_every_steps={steps}"]
  command = [
    sys.executable,
    "-m",
    "research.main",
    f"--config={config}",
    f"--workdir={workdir}",
    *flags,
    *overrides,
  ]
  start = time.perf_counter()
  out = subprocess.run(
    command,
    cwd=REPO,
    capture_output=True,
    text=True,
    check=False,
    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
  )
  wall = time.perf_counter() - start
  if out.returncode:
    raise SystemExit(f"research.main failed:\n{out.stderr[-3000:]}")
  return wall


def loop_rate(name, config, overrides, counts, repeats, tmp) -> dict:
  default_intervals = name.endswith("_default")
  n1, n2 = counts
  run = lambda steps, tag: main_wall(
    config, overrides, steps, os.path.join(tmp, tag), default_intervals
  )
  run(n1, f"{name}_warm")
  walls = {n1: [], n2: []}
  for r in range(repeats):
    for steps in (n1, n2):
      walls[steps].append(run(steps, f"{name}_{steps}_{r}"))
  best1, best2 = min(walls[n1]), min(walls[n2])
  return {
    "steps_per_s": (n2 - n1) / max(best2 - best1, 1e-9),
    "wall_n1": best1,
    "wall_n2": best2,
    "n1": n1,
    "n2": n2,
  }


def model_and_data(name: str, dataset: str):
  """The workload's model (as research.main builds it), optimizer and uint8 training split."""
  from experiments.configs import cifar10_resnet, mlp_digits
  from research import data
  from research.train import build_optimizer, loop

  config = (
    cifar10_resnet.get_config("resnet20") if name == "resnet20" else (mlp_digits.get_config())
  )
  config.dataset.name = dataset
  if name != "resnet20":
    config.model.dropout_rate = 0.0
  model = loop.create_model(config, 10)
  images, labels = data.load_split(dataset, "train")
  tx = build_optimizer({**config.optimizer.to_dict(), "weight_decay": 0.0})
  return model, tx, images, labels


def step_rate(name: str, dataset: str, batch: int, seconds: float = 3.0) -> float:
  """Steps/s of the library's step alone on one fixed device batch."""
  import jax

  from research.train import parallel, state, steps

  model, tx, images, labels = model_and_data(name, dataset)
  mesh = parallel.create_mesh(1)
  variables = state.init_variables(model, jax.random.PRNGKey(0), images.shape[1:])
  st = parallel.replicate(
    state.create_train_state(variables, tx, None, jax.random.PRNGKey(1)), mesh
  )
  step = parallel.data_parallel_train_step(steps.make_train_step(model, tx), mesh, donate=True)
  batch_arrays = parallel.put_batch(
    {"image": images[:batch].astype(np.float32) / 255.0, "label": labels[:batch]}, mesh
  )
  return _time(lambda st: step(st, batch_arrays), st, seconds)


def hand_rate(name: str, dataset: str, batch: int, seconds: float = 3.0) -> float:
  """Steps/s of a minimal hand-written loop over NumPy arrays in host memory."""
  import jax
  import optax

  from research import models

  model, _, images, labels = model_and_data(name, dataset)
  model = model.clone(axis_name=None) if hasattr(model, "axis_name") else model
  tx = optax.sgd(0.1, momentum=0.9) if name == "resnet20" else optax.adam(1e-3)
  variables = model.init(jax.random.PRNGKey(0), images[:1].astype(np.float32), train=False)
  params, stats = variables["params"], variables.get("batch_stats", {})
  opt_state = tx.init(params)

  @jax.jit
  def train_step(params, stats, opt_state, x, y):
    def loss_fn(p):
      out, new = model.apply(
        {"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
      )
      return models.softmax_cross_entropy(out, y), new.get("batch_stats", {})

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), stats, opt_state, loss

  rng = np.random.default_rng(0)
  order, pos = rng.permutation(len(images)), 0

  def one(carry):
    nonlocal order, pos
    if pos + batch > len(order):
      order, pos = rng.permutation(len(images)), 0
    idx = order[pos : pos + batch]
    pos += batch
    x = jax.device_put(images[idx].astype(np.float32) / 255.0)
    y = jax.device_put(labels[idx])
    *carry, loss = train_step(*carry, x, y)
    return carry, loss

  return _time(one, (params, stats, opt_state), seconds)


def _time(fn, carry, seconds: float) -> float:
  import jax

  for _ in range(3):
    carry, out = fn(carry)
  jax.block_until_ready(out)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    carry, out = fn(carry)
    n += 1
  jax.block_until_ready(out)
  return n / (time.perf_counter() - start)


def pipeline_rate(dataset: str, batch: int, seconds: float = 3.0) -> dict:
  """Examples/s of the host pipeline (grain) on `dataset`'s training split."""
  from research import data

  iterator = data.create_iterator(dataset, "train", global_batch_size=batch, seed=0, train=True)
  for _ in range(5):
    next(iterator)
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    next(iterator)
    n += 1
  rate = n * batch / (time.perf_counter() - start)
  cores = min(4, os.cpu_count() or 1)  # the pipeline's worker threads
  return {"examples_per_s": rate, "per_core": rate / cores, "threads": cores}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument(
    "--workloads",
    nargs="+",
    default=["mlp_digits", "mlp_digits_default", "mlp_fashion", "resnet20"],
  )
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--json", default=None)
  args = parser.parse_args(argv)
  from research import runtime

  runtime.configure()
  rows, pipelines = {}, {}
  with tempfile.TemporaryDirectory() as tmp:
    synthetic = os.path.join(tmp, "synthetic_cifar")
    write_synthetic(synthetic)
    table = workloads(synthetic)
    for name in args.workloads:
      config, overrides, counts, setup = table[name]
      print(f"{name}: timing research.main ...", file=sys.stderr, flush=True)
      row = {"loop": loop_rate(name, config, overrides, counts, args.repeats, tmp)}
      base = name.replace("_default", "")
      if base in rows:
        row.update(step=rows[base]["step"], hand=rows[base]["hand"])
      else:
        row["step"] = step_rate(base, setup["dataset"], setup["batch"])
        row["hand"] = hand_rate(base, setup["dataset"], setup["batch"])
      rows[name] = row
    for dataset, batch in (("digits", 64), ("fashion_mnist_idx", 128)):
      pipelines[dataset] = pipeline_rate(dataset, batch)
  load = os.getloadavg()
  print(
    f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()}, "
    f"{os.cpu_count()} CPU cores; load average at the end {load[0]:.1f}; "
    f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
  )
  print()
  print(
    "| workload | loop steps/s (whole research.main, marginal) | step alone | hand-written "
    "loop | loop / step | loop / hand |"
  )
  print("|---|---:|---:|---:|---:|---:|")
  for name, r in rows.items():
    loop = r["loop"]["steps_per_s"]
    print(
      f"| {name} | {loop:,.1f} | {r['step']:,.1f} | {r['hand']:,.1f} | "
      f"{loop / r['step']:.2f} | {loop / r['hand']:.2f} |"
    )
  print()
  for name, r in rows.items():
    lp = r["loop"]
    print(
      f"{name}: research.main wall {lp['wall_n1']:.1f} s for {lp['n1']} steps, "
      f"{lp['wall_n2']:.1f} s for {lp['n2']} steps"
    )
  print()
  print("| host pipeline (grain) | examples/s | per core |")
  print("|---|---:|---:|")
  for dataset, p in pipelines.items():
    print(
      f"| {dataset} | {p['examples_per_s']:,.0f} | {p['per_core']:,.0f} ({p['threads']} threads) |"
    )
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"rows": rows, "pipelines": pipelines}, f, indent=2)


if __name__ == "__main__":
  main()
