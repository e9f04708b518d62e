"""Trains a config: `python -m research.main --config=experiments/configs/NAME.py --workdir=DIR`.

Overrides: --config.KEY=VALUE (e.g. --config.optimizer.learning_rate=0.05); --config.model.ARG
and --config.optimizer.ARG take any argument of the model and of the rule, listed in the config
or not (cli.allow_model_and_rule_keys). Running the same command again resumes from
DIR/checkpoints.

Several hosts: start the same command on every host with --coordinator_address=HOST:PORT
--num_processes=N --process_id=I (or the environment variables JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES, JAX_PROCESS_ID); --distributed alone lets JAX detect them (TPU pods, SLURM).

Exit codes (research.train.errors): 0 done; 2 an error the user can fix, a
research.errors.UserError (one `error:` line on stderr, nothing written; --verbosity=1 adds the
traceback); 3 training diverged; 130 / 143 stopped by SIGINT / SIGTERM after saving a checkpoint
(the same command resumes); 1 anything else, a bug (Python's traceback).
"""

from research import _extras

_extras.require("train", "research.main", program=__name__ == "__main__")

import json
import os

from absl import app, flags, logging
from ml_collections import config_flags

from research import cli

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
  "config", None, "Experiment config file (get_config()).", lock_config=True
)
# --config.model.ARG / --config.optimizer.ARG for any argument of the model / rule, even one
# the recipe does not list; an unknown key is one line naming its section and the nearest keys.
cli.allow_model_and_rule_keys("config")
flags.DEFINE_string("workdir", None, "Run directory: checkpoints, metrics.jsonl, TensorBoard.")
flags.DEFINE_bool(
  "distributed", False, "Call jax.distributed.initialize() (auto-detects TPU pods and SLURM)."
)
flags.DEFINE_string(
  "coordinator_address",
  os.environ.get("JAX_COORDINATOR_ADDRESS"),
  "host:port of process 0, for several processes.",
)
flags.DEFINE_integer(
  "num_processes",
  int(os.environ.get("JAX_NUM_PROCESSES", 0)) or None,
  "Number of processes (hosts).",
)
flags.DEFINE_integer(
  "process_id",
  int(os.environ["JAX_PROCESS_ID"]) if "JAX_PROCESS_ID" in os.environ else None,
  "This process, 0..N-1.",
)
flags.DEFINE_string("result_file", None, "Also write the final metrics as JSON here.")
flags.DEFINE_string(
  "compilation_cache",
  None,
  "Directory of the persistent XLA compilation cache (default "
  '$RESEARCH_COMPILATION_CACHE or ~/.cache/research/jax); "" turns it off.',
)
flags.mark_flags_as_required(["config", "workdir"])


def initialize_distributed() -> None:
  """jax.distributed.initialize from the flags, before any other JAX call."""
  import jax  # noqa: PLC0415  (imported after flags are parsed)

  if FLAGS.coordinator_address or FLAGS.num_processes:
    missing = [
      n for n in ("coordinator_address", "num_processes", "process_id") if getattr(FLAGS, n) is None
    ]
    if missing:
      raise app.UsageError(
        f"several processes need --coordinator_address, --num_processes "
        f"and --process_id; missing {missing}"
      )
    jax.distributed.initialize(
      coordinator_address=FLAGS.coordinator_address,
      num_processes=FLAGS.num_processes,
      process_id=FLAGS.process_id,
    )
  elif FLAGS.distributed:
    jax.distributed.initialize()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  cli.start()
  from research import runtime  # noqa: PLC0415

  runtime.configure(FLAGS.compilation_cache)  # before JAX starts its backends
  initialize_distributed()
  from research.train import train_and_evaluate  # noqa: PLC0415  (after distributed init)

  logging.info("config:\n%s", FLAGS.config)
  result = cli.run_reporting_errors(train_and_evaluate, FLAGS.config, FLAGS.workdir)
  if FLAGS.result_file:
    with open(FLAGS.result_file, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
