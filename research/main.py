"""Trains a config: `python -m research.main --config=experiments/configs/NAME.py --workdir=DIR`.

Overrides: --config.KEY=VALUE (e.g. --config.optimizer.learning_rate=0.05). Running the same
command again resumes from DIR/checkpoints.

Several hosts: start the same command on every host with --coordinator_address=HOST:PORT
--num_processes=N --process_id=I (or the environment variables JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES, JAX_PROCESS_ID); --distributed alone lets JAX detect them (TPU pods, SLURM).

Exit codes (research.train.errors): 0 done; 2 an error the user can fix (one `error:` line on
stderr, nothing written; --verbosity=1 adds the traceback); 3 training diverged; 130 / 143
stopped by SIGINT / SIGTERM after saving a checkpoint (the same command resumes).
"""

import json
import os
import signal
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Experiment config file (get_config()).',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory: checkpoints, metrics.jsonl, TensorBoard.')
flags.DEFINE_bool('distributed', False,
                  'Call jax.distributed.initialize() (auto-detects TPU pods and SLURM).')
flags.DEFINE_string('coordinator_address', os.environ.get('JAX_COORDINATOR_ADDRESS'),
                    'host:port of process 0, for several processes.')
flags.DEFINE_integer('num_processes', int(os.environ.get('JAX_NUM_PROCESSES', 0)) or None,
                     'Number of processes (hosts).')
flags.DEFINE_integer('process_id', int(os.environ['JAX_PROCESS_ID'])
                     if 'JAX_PROCESS_ID' in os.environ else None, 'This process, 0..N-1.')
flags.DEFINE_string('result_file', None, 'Also write the final metrics as JSON here.')
flags.DEFINE_string('compilation_cache', None,
                    'Directory of the persistent XLA compilation cache (default '
                    '$RESEARCH_COMPILATION_CACHE or ~/.cache/research/jax); "" turns it off.')
flags.mark_flags_as_required(['config', 'workdir'])


USER_ERROR = 2  # research.train.errors.USER_ERROR, without importing JAX before the flags


def _one_line(error: BaseException) -> str:
  text = str(error).strip()
  if len(text) > 1 and text[0] == text[-1] == "'":  # KeyError / AttributeError repr-quote
    text = text[1:-1]
  text = ' '.join(text.replace('\\n', '\n').split())
  return text or type(error).__name__


def _verbose() -> bool:
  return FLAGS['verbosity'].present and FLAGS.verbosity >= 1


def _quiet_closed_loops(hook=sys.unraisablehook):
  """Orbax's failed background writes leave tensorstore callbacks that find its asyncio loop
  closed; each would print a traceback after the run's own error line."""

  def unraisable(info):
    if isinstance(info.exc_value, RuntimeError) and 'Event loop is closed' in str(
        info.exc_value):
      return
    hook(info)

  sys.unraisablehook = unraisable


def _stop_before_training(signum, frame) -> None:
  """SIGTERM / SIGINT while starting up (imports, checks, compilation): nothing to save yet.

  Exits at once (an exception raised here could land in a callback that swallows it); the
  training loop installs its own handlers (research.train.interrupt) once it runs."""
  del frame
  name = signal.Signals(signum).name
  print(f'interrupted by {name} before training started; nothing to save; run the same '
        'command to start', flush=True)
  os._exit(128 + signum)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with a bad flag or config override as one `error:` line and exit 2."""
  try:
    return FLAGS(argv)
  except Exception as e:  # noqa: BLE001  (flags.Error, and what ml_collections raises)
    if '--verbosity=1' in argv or '-v=1' in argv:
      traceback.print_exc()
    print(f'error: {_one_line(e)} (see --helpshort)', file=sys.stderr)
    sys.exit(USER_ERROR)


def initialize_distributed() -> None:
  """jax.distributed.initialize from the flags, before any other JAX call."""
  import jax  # noqa: PLC0415  (imported after flags are parsed)

  if FLAGS.coordinator_address or FLAGS.num_processes:
    missing = [n for n in ('coordinator_address', 'num_processes', 'process_id')
               if getattr(FLAGS, n) is None]
    if missing:
      raise app.UsageError(f'several processes need --coordinator_address, --num_processes '
                           f'and --process_id; missing {missing}')
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  elif FLAGS.distributed:
    jax.distributed.initialize()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments {argv[1:]}')
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if not FLAGS['verbosity'].present:
    # Orbax and TFDS log warnings (and Orbax the tracebacks of failed background writes) that
    # the run reports itself, in one line; --verbosity=0 or 1 shows them.
    logging.set_verbosity(logging.FATAL)
  for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, _stop_before_training)
  if not _verbose():
    _quiet_closed_loops()
  try:
    FLAGS.config.keys()  # a config file that failed to load raises here, not at parsing
  except OSError as e:
    print(f'error: {_one_line(e)}', file=sys.stderr)
    sys.exit(USER_ERROR)
  from research import runtime  # noqa: PLC0415

  runtime.configure(FLAGS.compilation_cache)  # before JAX starts its backends
  initialize_distributed()
  from research.train import errors, train_and_evaluate  # noqa: PLC0415  (after the init)

  logging.info('config:\n%s', FLAGS.config)
  try:
    result = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except Exception as e:  # noqa: BLE001  (mapped to documented codes; anything else re-raised)
    code = errors.exit_code(e)
    if code is None:
      raise
    if _verbose():
      traceback.print_exc()
    interrupted = code >= 128
    print(_one_line(e) if interrupted else f'error: {_one_line(e)}',
          file=sys.stdout if interrupted else sys.stderr, flush=True)
    sys.exit(code)
  if FLAGS.result_file:
    with open(FLAGS.result_file, 'w') as f:
      json.dump(result, f, indent=2)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
