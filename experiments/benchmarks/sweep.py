"""64 learning-rate trials of the main job: one vectorized program against one run after another.

    python -m experiments.benchmarks.sweep [--trials=64] [--steps=600] [--workload=mlp_digits]
        [--json=PATH]

Both sweeps run in this process through `research.sweep.run.Sweep` with the same points
(`--space=optimizer.learning_rate=loguniform(1e-4,1e-1)`, random, seed 0), each into a fresh
directory and a fresh compilation cache: `vectorized` trains all trials as one program
(`research.sweep.vectorized`), `sequential` calls `research.train.train_and_evaluate` per trial
(what an external scheduler would start, minus the process start-ups: a lower bound of its
time). Reported: each sweep's wall time, their ratio (target >= 10x on the 2-core CPU), trials per
second, and the best test accuracy each found (the same trials, so nearly the same).

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

  if workload == 'resnet20':
    from experiments.benchmarks.train_loop import write_synthetic

    synthetic = os.path.join(data_dir, 'synthetic_cifar')
    write_synthetic(synthetic, n=2048)
    config = cifar10_resnet.get_config('resnet20')
    config.dataset.name = f'idx:{synthetic}'
    config.dataset.standardize = False
    config.optimizer.weight_decay = 0.0
    config.optimizer.schedule.name = 'constant'
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

  jax.config.update('jax_compilation_cache_dir', cache)  # fresh: compile times count
  dims = [space.parse('optimizer.learning_rate=loguniform(1e-4,1e-1)', config)]
  sweep = run.Sweep(config, workdir, dims, method='random', trials=trials, seed=0, mode=mode,
                    log=lambda _: None)
  start = time.perf_counter()
  with contextlib.redirect_stdout(io.StringIO()):  # the per-trial lines of sequential runs
    records = sweep.run()
  return time.perf_counter() - start, records


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--trials', type=int, default=64)
  parser.add_argument('--steps', type=int, default=600)
  parser.add_argument('--workload', choices=['mlp_digits', 'resnet20'], default='mlp_digits')
  parser.add_argument('--modes', nargs='+', default=['vectorized', 'sequential'])
  parser.add_argument('--json', default=None)
  args = parser.parse_args(argv)
  from research import runtime
  from research.sweep import run

  runtime.configure()
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    config = base_config(args.workload, args.steps, tmp)
    for mode in args.modes:
      print(f'{mode}: {args.trials} trials of {args.workload}, {args.steps} steps ...',
            file=sys.stderr, flush=True)
      wall, records = time_sweep(config, os.path.join(tmp, mode), args.trials, mode,
                                 os.path.join(tmp, f'cache_{mode}'))
      best = run.ranked(records, 'accuracy', 'max')[0]
      out[mode] = {'wall_s': wall, 'trials_per_s': args.trials / wall,
                   'best_accuracy': best['best']['accuracy'],
                   'best_learning_rate': best['overrides']['optimizer.learning_rate']}
  load = os.getloadavg()
  print(f'date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.node()}, '
        f'{os.cpu_count()} CPU cores; load average at the end {load[0]:.1f}')
  print(f'{args.trials} trials of {args.workload} ({args.steps} steps each), learning rate '
        'log-uniform in [1e-4, 1e-1], random, seed 0')
  print()
  print('| mode | wall s | trials/s | best test accuracy | at learning rate |')
  print('|---|---:|---:|---:|---:|')
  for mode, r in out.items():
    print(f"| {mode} | {r['wall_s']:.1f} | {r['trials_per_s']:.2f} | {r['best_accuracy']:.4f} | "
          f"{r['best_learning_rate']:.3g} |")
  if {'vectorized', 'sequential'} <= set(out):
    ratio = out['sequential']['wall_s'] / out['vectorized']['wall_s']
    print(f'\nsequential / vectorized wall time: {ratio:.1f}x (target >= 10x)')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(out, f, indent=2)


if __name__ == '__main__':
  main()
