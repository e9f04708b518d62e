"""Which XLA:CPU flags make our training step faster, and do they change its numbers?

    python -m experiments.benchmarks.xla_cpu_flags [--rounds=3] [--steps=3] [--batch-size=64]
        [--model=resnet20] [--candidates='--xla_cpu_use_onednn=true' ...]

Each candidate flag set runs in its own process (XLA reads XLA_FLAGS once, when its CPU client
starts) with the library's step (`research.train.steps.make_train_step` under
`research.train.parallel.data_parallel_train_step`, heavy-ball SGD, BatchNorm in training mode)
on a fixed random CIFAR-shaped batch. Rounds are interleaved (default, A, B, ..., default, A, B,
...) so that a busy machine slows every candidate alike; the report gives each candidate's
median images/s over rounds, its ratio to the default's, its compile time, and how far its
parameters after `--steps` steps are from the default's (max |difference|; 0 means
bit-identical), so a faster flag that changes the numerics beyond test tolerance is visible.

The baseline is JAX's own default (the flags that `research.runtime` sets are removed from the
environment for it), so the table shows what `research.runtime.CPU_FLAGS` buys.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CANDIDATES = (
  "--xla_cpu_use_fusion_emitters=false",
  "--xla_cpu_use_onednn=true",
  "--xla_cpu_experimental_onednn_custom_call=true",
  "--xla_cpu_use_xnnpack=true",
  "--xla_cpu_experimental_xnn_fusion_type=LIBRARY_FUSION_TYPE_DOT",
  "--xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME",
)

CHILD = r"""
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
from research import models
from research.train import build_optimizer, parallel, state as state_lib, steps
args = json.loads(sys.argv[1])
mesh = parallel.create_mesh(1)
model = models.create(args["model"], num_classes=10).clone(axis_name=parallel.AXIS)
tx = build_optimizer({"name": "heavy_ball", "learning_rate": 0.1, "beta": 0.9})
init = jax.jit(lambda r: model.init({"params": r, "dropout": r}, jnp.zeros((1, 32, 32, 3)),
                                    train=False))
variables = jax.tree.map(np.asarray, dict(init(jax.random.PRNGKey(0))))
st = parallel.replicate(state_lib.create_train_state(variables, tx, None,
                                                      jax.random.PRNGKey(1)), mesh)
step = parallel.data_parallel_train_step(steps.make_train_step(model, tx), mesh, donate=True)
rng = np.random.default_rng(0)
b = args["batch_size"]
batch = parallel.put_batch({"image": rng.random((b, 32, 32, 3), dtype=np.float32),
                            "label": rng.integers(0, 10, b).astype(np.int32)}, mesh)
t = time.perf_counter()
compiled = step.lower(st, batch).compile()
compile_s = time.perf_counter() - t
for _ in range(args["steps"]):
  st, m = compiled(st, batch)
jax.block_until_ready(m)
times = []
for _ in range(args["steps"]):
  t = time.perf_counter()
  st, m = compiled(st, batch)
  jax.block_until_ready(m)
  times.append(time.perf_counter() - t)
params = np.concatenate([np.ravel(x) for x in jax.tree.leaves(jax.device_get(st.params))])
np.save(args["params_out"], params)
print(json.dumps({"compile_s": compile_s, "images_per_s": b / min(times)}))
"""


def _base_flags() -> str:
  """XLA_FLAGS without what research.runtime adds (the default is JAX's own)."""
  from research import runtime

  flags = os.environ.get("XLA_FLAGS", "").split()
  return " ".join(f for f in flags if f not in runtime.CPU_FLAGS)


def run_child(flags: str, args, params_out: str) -> dict:
  env = {
    **os.environ,
    "XLA_FLAGS": f"{_base_flags()} {flags}".strip(),
    "RESEARCH_CPU_FLAGS": "0",
    "TF_CPP_MIN_LOG_LEVEL": "2",
  }
  payload = json.dumps(
    {
      "model": args.model,
      "batch_size": args.batch_size,
      "steps": args.steps,
      "params_out": params_out,
    }
  )
  out = subprocess.run(
    [sys.executable, "-c", CHILD, payload], env=env, capture_output=True, text=True, check=False
  )
  if out.returncode:
    raise SystemExit(f"flags {flags!r} failed:\n{out.stderr[-2000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
  import tempfile

  import numpy as np

  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--batch-size", type=int, default=64)
  parser.add_argument("--model", default="resnet20")
  parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
  args = parser.parse_args(argv)
  sets = ["", *args.candidates]
  results = {s: [] for s in sets}
  with tempfile.TemporaryDirectory() as tmp:
    paths = {s: os.path.join(tmp, f"p{i}.npy") for i, s in enumerate(sets)}
    for r in range(args.rounds):
      for s in sets:
        results[s].append(run_child(s, args, paths[s]))
        print(
          f"round {r + 1}/{args.rounds} {s or 'default'}: "
          f"{results[s][-1]['images_per_s']:.1f} images/s",
          file=sys.stderr,
          flush=True,
        )
    reference = np.load(paths[""])
    diffs = {s: float(np.abs(np.load(paths[s]) - reference).max()) for s in sets}
  base = statistics.median(r["images_per_s"] for r in results[""])
  print(
    f"{args.model}, batch {args.batch_size}, {args.rounds} interleaved rounds of "
    f"{args.steps} steps; XLA_FLAGS base: {_base_flags() or '(none)'}"
  )
  print(f"{'flags':60s} {'images/s':>9s} {'ratio':>6s} {'compile s':>9s} {'max |dparams|':>13s}")
  for s in sets:
    ips = statistics.median(r["images_per_s"] for r in results[s])
    comp = statistics.median(r["compile_s"] for r in results[s])
    print(f"{s or 'default':60s} {ips:9.1f} {ips / base:6.2f} {comp:9.1f} {diffs[s]:13.3g}")


if __name__ == "__main__":
  main()
