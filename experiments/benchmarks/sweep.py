"""64 learning-rate trials of the main job: one vectorized program against one run after another.

    python -m experiments.benchmarks.sweep [--trials=64] [--steps=600] [--workload=mlp_digits]
        [--modes vectorized sequential processes] [--json=PATH]

Three ways to run the same trials (`--space=optimizer.learning_rate=loguniform(1e-4,1e-1)`,
random, seed 0), each into a fresh directory and a fresh compilation cache:
- `vectorized`: `research.sweep` trains all trials as one program (`research.sweep.vectorized`);
- `sequential`: `research.sweep --mode=sequential`, `research.train.train_and_evaluate` per trial
  in this process (no process start-ups; each trial compiles its own program, its learning
  rate being a constant of it);
- `processes`: what the field's external schedulers do, one `python -m research.main` process
  per trial with the trial's `--config.optimizer.learning_rate`, one after another (sharing
  one compilation cache, as runs on one machine would).
Reported: each way's wall time, trials per second, the best validation accuracy found (the
same trials, so nearly the same: what ranks them), the chosen trial's test accuracy (evaluated
once, after the choice; `processes` runs evaluate every trial's test split at their end, as
research.main does, and only the chosen one's is reported), and the ratios to `vectorized`
(target >= 10x on the 2-core CPU).

`--workload=resnet20` sweeps ResNet-20 on random CIFAR-shaped uint8 images (an IDX directory,
through the in-memory path) for accelerators: trials per second of the vectorized program.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime


def base_config(workload: str, steps: int, data_dir: str):
  from experiments.configs import cifar10_resnet, mlp_digits

  if workload == "resnet20":
    from experiments.benchmarks.train_loop import write_synthetic

    synthetic = os.path.join(data_dir, "synthetic_cifar")
    write_synthetic(synthetic, n=2048)
    config = cifar10_resnet.get_config("resnet20")
    config.dataset.name = f"idx:{synthetic}"
    config.dataset.standardize = False
    config.optimizer.weight_decay = 0.0
    config.optimizer.schedule.name = "constant"
  else:
    config = mlp_digits.get_config()
  config.num_train_steps = steps
  config.eval_every_steps = config.checkpoint_every_steps = steps
  config.log_every_steps = min(config.log_every_steps, steps)
  config.progress_bar = config.tensorboard = False
  return config


def time_sweep(config, workdir: str, trials: int, mode: str, cache: str) -> tuple[float, list]:
  import contextlib
  import io

  import jax

  from research.sweep import run, space

  jax.config.update("jax_compilation_cache_dir", cache)  # fresh: compile times count
  dims = [space.parse("optimizer.learning_rate=loguniform(1e-4,1e-1)", config)]
  sweep = run.Sweep(
    config, workdir, dims, method="random", trials=trials, seed=0, mode=mode, log=lambda _: None
  )
  start = time.perf_counter()
  with contextlib.redirect_stdout(io.StringIO()):  # the per-trial lines of sequential runs
    records = sweep.run()
  return time.perf_counter() - start, records


def time_processes(config, workdir: str, trials: int, cache: str) -> tuple[float, list]:
  """One research.main process per trial, one after another, as an external scheduler runs."""
  import subprocess

  from research.sweep import space
  from research.train import validate

  dims = [space.parse("optimizer.learning_rate=loguniform(1e-4,1e-1)", config)]
  config_file = os.path.join(workdir, "base_config.json")
  os.makedirs(workdir, exist_ok=True)
  with open(config_file, "w") as f:
    f.write(validate.config_json(config))
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  records = []
  start = time.perf_counter()
  for i, point in enumerate(space.random_points(dims, trials, 0)):
    result_file = os.path.join(workdir, f"trial_{i:03d}.json")
    lr = point["optimizer.learning_rate"]
    subprocess.run(
      [
        sys.executable,
        "-m",
        "research.main",
        f"--config=experiments/configs/from_json.py:{config_file}",
        f"--workdir={os.path.join(workdir, f'trial_{i:03d}')}",
        f"--config.optimizer.learning_rate={lr!r}",
        f"--compilation_cache={cache}",
        f"--result_file={result_file}",
      ],
      cwd=repo,
      check=True,
      capture_output=True,
    )
    with open(result_file) as f:
      result = json.load(f)
    records.append(
      {
        "trial": i,
        "stage": 1,
        "overrides": point,
        "diverged": False,
        "best_validation_accuracy": result.get("best_validation_accuracy"),
        "test_accuracy": result.get("test_accuracy"),  # research.main tests every run
      }
    )
  return time.perf_counter() - start, records


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--trials", type=int, default=64)
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--workload", choices=["mlp_digits", "resnet20"], default="mlp_digits")
  parser.add_argument(
    "--modes",
    nargs="+",
    default=["vectorized", "sequential", "processes"],
    choices=["vectorized", "sequential", "processes"],
  )
  parser.add_argument("--json", default=None)
  args = parser.parse_args(argv)
  from research import runtime
  from research.sweep import run

  runtime.configure()
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    config = base_config(args.workload, args.steps, tmp)
    for mode in args.modes:
      print(
        f"{mode}: {args.trials} trials of {args.workload}, {args.steps} steps ...",
        file=sys.stderr,
        flush=True,
      )
      if mode == "processes":
        wall, records = time_processes(
          config, os.path.join(tmp, mode), args.trials, os.path.join(tmp, f"cache_{mode}")
        )
      else:
        wall, records = time_sweep(
          config, os.path.join(tmp, mode), args.trials, mode, os.path.join(tmp, f"cache_{mode}")
        )
      best = run.chosen(records, "accuracy", "max")
      out[mode] = {
        "wall_s": wall,
        "trials_per_s": args.trials / wall,
        "best_validation_accuracy": best["best_validation_accuracy"],
        "chosen_test_accuracy": best.get("test_accuracy"),
        "best_learning_rate": best["overrides"]["optimizer.learning_rate"],
      }
  load = os.getloadavg()
  print(
    f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()}, "
    f"{os.cpu_count()} CPU cores; load average at the end {load[0]:.1f}"
  )
  print(
    f"{args.trials} trials of {args.workload} ({args.steps} steps each), learning rate "
    "log-uniform in [1e-4, 1e-1], random, seed 0"
  )
  print()
  print(
    "| mode | wall s | trials/s | best validation accuracy | at learning rate | its test accuracy |"
  )
  print("|---|---:|---:|---:|---:|---:|")
  for mode, r in out.items():
    print(
      f"| {mode} | {r['wall_s']:.1f} | {r['trials_per_s']:.2f} | "
      f"{r['best_validation_accuracy']:.4f} | {r['best_learning_rate']:.3g} | "
      f"{r['chosen_test_accuracy']:.4f} |"
    )
  print()
  for mode in [m for m in out if m != "vectorized" and "vectorized" in out]:
    ratio = out[mode]["wall_s"] / out["vectorized"]["wall_s"]
    out[mode]["over_vectorized"] = ratio
    print(f"{mode} / vectorized wall time: {ratio:.1f}x (target >= 10x)")
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=2)


if __name__ == "__main__":
  main()
