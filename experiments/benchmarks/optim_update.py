"""Our optimizer step against optax's, and against the memory-traffic limit.

    python -m experiments.benchmarks.optim_update [--repeats=7] [--iters=5] [--small_leaves=2000]
        [--variants=packed,flattened] [--rules=adam,rmsprop,heavy_ball,adagrad]

For adam, rmsprop, heavy_ball and adagrad it times one jitted step `update + apply_updates`
(parameters and optimizer state donated, on both sides) of `research.optim` and of optax's
built-in with the same hyperparameters, on
  (a) a tree shaped like ResNet-50's parameters (161 leaves, 25.6M float32 entries), and
  (b) `--small_leaves` small leaves of random shapes (16 to 4,096 entries each).
Trees are built in NumPy and `device_put` (building thousands of shapes with eager `jnp`
would compile once per shape).

Ours runs in up to three layouts (`--variants`):
  per-leaf   the rule as it is (optax's state layout; on each leaf the same loops as optax's),
  packed     `research.optim.pack_small_leaves(rule)`, the wrapper `research.train`'s loop puts
             around its chain: the state of all leaves of at most 16,384 entries in one vector,
  flattened  `research.optim.flatten_leaves(rule)`: all leaves in one buffer per dtype
             (multi-tensor style: a handful of loops per step instead of several per leaf).

The memory-traffic limit of a rule is the bytes it must read and write (adam reads X, g, M, G
and writes X, M, G: 7 arrays; rmsprop, heavy_ball and adagrad read X, g and one accumulator
and write X and the accumulator: 5 arrays) divided by the bandwidth of a jitted in-place copy
(`x + c` with `x` donated) of one float32 buffer holding as many bytes as the tree. The copy
of the tree leaf by leaf is printed too: for many small leaves it is far slower than the
bandwidth, because each leaf costs a separate loop.

Timings are medians over `--repeats` rounds of `--iters` steps; ours and optax's alternate
round by round so that load from other processes hits both alike. Compile times are printed
per rule (thousands of leaves take minutes to compile on a busy 2-core machine; setting
JAX_COMPILATION_CACHE_DIR makes a second run start at once).
"""

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import research.optim as ro

# rule -> (ours, optax's, number of parameter-sized arrays read and written by one step)
RULES: dict[str, tuple[Callable, Callable, int]] = {
  "adam": (lambda: ro.adam(1e-3), lambda: optax.adam(1e-3), 7),
  "rmsprop": (lambda: ro.rmsprop(1e-3, 0.9, 1e-8), lambda: optax.rmsprop(1e-3, 0.9, 1e-8), 5),
  "heavy_ball": (lambda: ro.heavy_ball(1e-3, 0.9), lambda: optax.sgd(1e-3, momentum=0.9), 5),
  "adagrad": (lambda: ro.adagrad(1e-3), lambda: optax.adagrad(1e-3), 5),
}
# layout of ours -> wrapper
VARIANTS: dict[str, Callable] = {
  "per-leaf": lambda tx: tx,
  "packed": ro.pack_small_leaves,
  "flattened": ro.flatten_leaves,
}


def resnet50_shapes() -> list[tuple[int, ...]]:
  """Parameter shapes of ResNet-50 (convolutions without bias, BatchNorm scale and bias)."""
  shapes = [(7, 7, 3, 64), (64,), (64,)]
  in_channels = 64
  for stage, blocks in enumerate([3, 4, 6, 3]):
    width = 64 * 2**stage
    for block in range(blocks):
      shapes += [
        (1, 1, in_channels, width),
        (width,),
        (width,),
        (3, 3, width, width),
        (width,),
        (width,),
        (1, 1, width, 4 * width),
        (4 * width,),
        (4 * width,),
      ]
      if block == 0:
        shapes += [(1, 1, in_channels, 4 * width), (4 * width,), (4 * width,)]
      in_channels = 4 * width
  return shapes + [(2048, 1000), (1000,)]


def small_shapes(count: int, seed: int = 0) -> list[tuple[int, ...]]:
  """`count` random small shapes: vectors, matrices and 3x3 kernels."""
  rng = np.random.default_rng(seed)
  shapes = []
  for _ in range(count):
    kind = rng.integers(3)
    if kind == 0:
      shapes.append((int(rng.integers(16, 513)),))
    elif kind == 1:
      shapes.append((int(rng.integers(4, 65)), int(rng.integers(4, 65))))
    else:
      shapes.append((3, 3, int(rng.integers(2, 17)), int(rng.integers(2, 17))))
  return shapes


def make_tree(shapes, seed: int) -> dict[str, jax.Array]:
  rng = np.random.default_rng(seed)
  return {
    f"p{i:04d}": jax.device_put(rng.standard_normal(s, dtype=np.float32))
    for i, s in enumerate(shapes)
  }


def compile_step(tx: optax.GradientTransformation, params, grads):
  """The jitted, compiled step (params, state, grads) -> (params, state), both donated."""

  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  start = time.perf_counter()
  compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile()
  return compiled, state, time.perf_counter() - start


class Runner:
  """Holds one compiled step with its own donated parameters and state."""

  def __init__(self, tx, params, grads):
    self.step, self.state, self.compile_s = compile_step(tx, params, grads)
    self.params = jax.tree.map(jnp.copy, params)
    self.grads = grads
    self.run(1)

  def run(self, iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
      self.params, self.state = self.step(self.params, self.state, self.grads)
    jax.block_until_ready((self.params, self.state))
    return (time.perf_counter() - start) / iters


def copy_seconds(tree, repeats: int, iters: int) -> float:
  """Median time of a jitted in-place copy (x + c, x donated) of every leaf of `tree`."""
  add = jax.jit(lambda t, c: jax.tree.map(lambda x: x + c, t), donate_argnums=0)
  c = jnp.zeros([], jnp.float32)
  tree = add(jax.tree.map(jnp.copy, tree), c)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    for _ in range(iters):
      tree = add(tree, c)
    jax.block_until_ready(tree)
    times.append((time.perf_counter() - start) / iters)
  return float(np.median(times))


def bench_tree(name, shapes, rules, variants, repeats, iters):
  params, grads = make_tree(shapes, 0), make_tree(shapes, 1)
  entries = sum(int(np.prod(s)) for s in shapes)
  flat = {"x": jax.device_put(np.zeros(entries, np.float32))}
  flat_copy = copy_seconds(flat, repeats, iters)
  tree_copy = copy_seconds(params, repeats, iters)
  bandwidth = 2 * 4 * entries / flat_copy  # bytes read + written per second
  print(
    f"tree {name}: {len(shapes)} leaves, {entries:,} float32 entries; in-place copy "
    f"{flat_copy * 1e3:.2f} ms as one buffer ({bandwidth / 1e9:.1f} GB/s), "
    f"{tree_copy * 1e3:.2f} ms leaf by leaf",
    flush=True,
  )
  rows = []
  for rule in rules:
    make_ours, make_theirs, arrays = RULES[rule]
    theirs = Runner(make_theirs(), params, grads)
    ours = {v: Runner(VARIANTS[v](make_ours()), params, grads) for v in variants}
    times_ours, times_theirs = {v: [] for v in variants}, []
    for _ in range(repeats):
      times_theirs.append(theirs.run(iters))
      for v in variants:
        times_ours[v].append(ours[v].run(iters))
    t_theirs = float(np.median(times_theirs))
    limit = arrays * 4 * entries / bandwidth
    for v in variants:
      t_ours = float(np.median(times_ours[v]))
      rows.append((name, rule, v, t_ours, t_theirs, limit))
      print(
        f"  {rule} {v}: ours {t_ours * 1e3:.2f} ms, optax {t_theirs * 1e3:.2f} ms "
        f"(compile {ours[v].compile_s:.1f} s / {theirs.compile_s:.1f} s)",
        flush=True,
      )
    del ours, theirs
  return rows


def markdown(rows) -> str:
  lines = [
    "| tree | rule | ours as | ours (ms) | optax (ms) | ours / optax | limit (ms) "
    "| ours % of limit | optax % of limit |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|",
  ]
  for tree, rule, variant, t_ours, t_theirs, limit in rows:
    lines.append(
      f"| {tree} | {rule} | {variant} | {t_ours * 1e3:.2f} | {t_theirs * 1e3:.2f} | "
      f"{t_ours / t_theirs:.2f} | {limit * 1e3:.2f} | {100 * limit / t_ours:.0f}% | "
      f"{100 * limit / t_theirs:.0f}% |"
    )
  return "\n".join(lines)


def machine() -> str:
  model = platform.processor() or "unknown CPU"
  if os.path.exists("/proc/cpuinfo"):
    with open("/proc/cpuinfo") as f:
      names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    model = names[0] if names else model
  load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
  return (
    f"{model}, {os.cpu_count()} cores, {jax.default_backend()} backend, jax "
    f"{jax.__version__}, optax {optax.__version__}; load average at start {load}"
  )


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--iters", type=int, default=5)
  parser.add_argument("--small_leaves", type=int, default=2000)
  parser.add_argument("--rules", default=",".join(RULES))
  parser.add_argument("--trees", default="resnet50,small")
  parser.add_argument(
    "--variants", default="packed,flattened", help=f"layouts of ours, from {','.join(VARIANTS)}"
  )
  args = parser.parse_args(argv)
  rules = [r for r in args.rules.split(",") if r]
  unknown = sorted(set(rules) - set(RULES))
  if unknown:
    parser.error(f"unknown rules {unknown}; choose from {sorted(RULES)}")
  variants = [v for v in args.variants.split(",") if v]
  unknown = sorted(set(variants) - set(VARIANTS))
  if unknown:
    parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
  started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
  print(f"{started}; {machine()}", flush=True)
  rows = []
  trees = args.trees.split(",")
  if "resnet50" in trees:
    rows += bench_tree(
      "(a) ResNet-50 sized", resnet50_shapes(), rules, variants, args.repeats, args.iters
    )
  if "small" in trees:
    rows += bench_tree(
      f"(b) {args.small_leaves} small leaves",
      small_shapes(args.small_leaves),
      rules,
      variants,
      args.repeats,
      args.iters,
    )
  print()
  print(markdown(rows))


if __name__ == "__main__":
  main()
