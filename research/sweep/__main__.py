"""Hyperparameter search: `python -m research.sweep`, many trials in one vectorized program.

    python -m research.sweep --config=experiments/configs/mlp_digits.py --workdir=DIR \\
      --space='optimizer.learning_rate=loguniform(1e-4,1e-1)' [--space='KEY=choice(a,b)' ...] \\
      --method=random|grid --trials=N [--seed=S] [--mode=auto|vectorized|sequential] \\
      [--refine=K [--coarse_epochs=1] [--fine_epochs=5]] [--trial=I] [--trials_per_program=C] \
      [--config.KEY=VALUE ...]

Trials are ranked by validation (held out of the training split: dataset.validation) and the
test split is evaluated once, after selection, for the chosen trial only; the leaderboard and
DIR/trials.jsonl name the split of every number. `--refine=K` turns on coarse to fine (the
lecture's): the coarse stage trains each of --trials trials --coarse_epochs epochs, then --trials
more are drawn inside the range of the K best and each trains --fine_epochs epochs; the chosen
trial is the fine stage's best. An epoch count E trains ceil(E * num_train_examples /
batch_size) steps (num_train_examples: the training split less the validation set); without
--refine every trial trains config.num_train_steps steps.

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
flags.DEFINE_integer(
  "refine",
  0,
  "Coarse to fine: a second (fine) stage of --trials trials sampled inside the range of the K "
  "best coarse trials by validation; 0: one stage of config.num_train_steps.",
)
flags.DEFINE_float(
  "coarse_epochs",
  1.0,
  "With --refine: epochs of the training split each coarse trial trains; E epochs are "
  "ceil(E * num_train_examples / batch_size) steps.",
)
flags.DEFINE_float(
  "fine_epochs",
  5.0,
  "With --refine: epochs each fine trial trains (the lecture: five to ten), converted to "
  "steps as --coarse_epochs.",
)
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
  print(report.summary(best, es.metric))
  print(f"{os.path.join(FLAGS.workdir, 'best_config.json')}, trials.jsonl, sweep.png")


def _run():
  from research.sweep import run, space  # noqa: PLC0415

  if not FLAGS.space:
    raise ConfigError(
      "no --space given; e.g. --space='optimizer.learning_rate=loguniform(1e-4,1e-1)'"
    )
  if not FLAGS.refine:
    given = [
      f"--{n}={FLAGS[n].value:g}" for n in ("coarse_epochs", "fine_epochs") if FLAGS[n].present
    ]
    if given:
      raise ConfigError(
        f"{' and '.join(given)} set the stages of a coarse-to-fine sweep: add --refine=K (the K "
        "best coarse trials seed the fine stage), or set a one-stage sweep's length with "
        "--config.num_train_steps"
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
    coarse_epochs=FLAGS.coarse_epochs,
    fine_epochs=FLAGS.fine_epochs,
    trials_per_program=FLAGS.trials_per_program,
  )
  print(f"ranked by validation {FLAGS.config.early_stopping.metric}; {sweep.describe_stages()}")
  return sweep.run(only=FLAGS.trial), dims


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
