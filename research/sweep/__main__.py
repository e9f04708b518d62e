"""Hyperparameter search: `python -m research.sweep`, many trials in one vectorized program.

    python -m research.sweep --config=experiments/configs/mlp_digits.py --workdir=DIR \\
      --space='optimizer.learning_rate=loguniform(1e-4,1e-1)' [--space='KEY=choice(a,b)' ...] \\
      --method=random|grid --trials=N [--seed=S] [--mode=auto|vectorized|sequential] \\
      [--refine=K] [--trial=I] [--trials_per_program=C] [--config.KEY=VALUE ...]

`auto` runs the trials as one vectorized program when every swept key is a number that does not
change the program (see research.sweep.vectorized), else one research.main run after another
in DIR/trial_NNN. `--trial=I` runs only trial I (sequentially): one task of a job array
(launch/sweep_array.sbatch); a later run without it reports. A finished sweep run again just
reports. Exit codes as research.main's: 2 for a bad --space or argument, a trial's config that
research.main would refuse, or a --workdir holding a research.main run, before anything runs or is
written.
"""

import os

from absl import app, flags
from ml_collections import config_flags

from research import cli
from research.errors import ConfigError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
  "config", None, "Experiment config file (get_config()).", lock_config=True
)
cli.allow_model_and_rule_keys("config")  # --config.model.ARG for any argument, as research.main
flags.DEFINE_string("workdir", None, "Sweep directory.")
flags.DEFINE_multi_string(
  "space", [], "KEY=DISTRIBUTION, e.g. 'optimizer.learning_rate=loguniform(1e-4,1e-1)'"
)
flags.DEFINE_enum("method", "random", ["random", "grid"], "Random or grid search.")
flags.DEFINE_integer("trials", 16, "Number of trials (grid: at most).")
flags.DEFINE_integer("seed", 0, "Seed of the random points.")
flags.DEFINE_enum(
  "mode", "auto", ["auto", "vectorized", "sequential"], "How trials run (module docstring)."
)
flags.DEFINE_integer("refine", 0, "A second stage sampling around the K best trials.")
flags.DEFINE_integer("trial", None, "Run only this trial (one task of a job array).")
flags.DEFINE_integer(
  "trials_per_program", 0, "Trials per vectorized program (0: as many as fit a quarter of memory)."
)
flags.DEFINE_string("compilation_cache", None, "As research.main's.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  cli.start()
  from research import runtime  # noqa: PLC0415

  runtime.configure(FLAGS.compilation_cache)
  records, dims = cli.run_reporting_errors(_run)
  if records is None:
    print(f"trial {FLAGS.trial} done; run without --trial to report once all trials are done")
    return
  from research.sweep import report  # noqa: PLC0415

  es = FLAGS.config.early_stopping
  best = report.write(os.path.abspath(FLAGS.workdir), records, dims, es.metric, es.mode)
  print(report.leaderboard(records, es.metric, es.mode))
  print(
    f"best: trial {best['trial']} {best['overrides']}; "
    f"{os.path.join(FLAGS.workdir, 'best_config.json')}, trials.jsonl, sweep.png"
  )


def _run():
  from research.sweep import run, space  # noqa: PLC0415

  if not FLAGS.space:
    raise ConfigError(
      "no --space given; e.g. --space='optimizer.learning_rate=loguniform(1e-4,1e-1)'"
    )
  dims = [space.parse(text, FLAGS.config) for text in FLAGS.space]
  sweep = run.Sweep(
    FLAGS.config,
    FLAGS.workdir,
    dims,
    method=FLAGS.method,
    trials=FLAGS.trials,
    seed=FLAGS.seed,
    mode=FLAGS.mode,
    refine=FLAGS.refine,
    trials_per_program=FLAGS.trials_per_program,
  )
  return sweep.run(only=FLAGS.trial), dims


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
