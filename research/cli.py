"""What `research.main` and `research.sweep` share as programs: flag parsing that reports a bad
flag in one line, start-up that quiets what is not an error, and errors mapped to exit codes
(research.train.errors.exit_code): a `research.errors.UserError` is one `error:` line on stderr
(its traceback too with --verbosity=1); any other exception is a bug and keeps its traceback.

Imports nothing heavy: the programs call it before JAX starts.
"""

import os
import signal
import sys
import traceback

from absl import flags, logging

from research.errors import USER_ERROR

FLAGS = flags.FLAGS


def one_line(error: BaseException) -> str:
  text = str(error).strip()
  if len(text) > 1 and text[0] == text[-1] == "'":  # KeyError / AttributeError repr-quote
    text = text[1:-1]
  text = " ".join(text.replace("\\n", "\n").split())
  return text or type(error).__name__


def verbose() -> bool:
  return FLAGS["verbosity"].present and FLAGS.verbosity >= 1


HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parsing, with a bad flag or config override as one `error:` line and exit 2, and
  --help (which absl ends with exit status 1) ending with 0, as users and scripts expect."""
  try:
    return FLAGS(argv)
  except SystemExit as e:
    if e.code == 1 and any(a in HELP_FLAGS for a in argv[1:]):
      sys.exit(0)
    raise
  except Exception as e:  # noqa: BLE001  (flags.Error, and what ml_collections raises)
    if "--verbosity=1" in argv or "-v=1" in argv:
      traceback.print_exc()
    print(f"error: {one_line(e)} (see --helpshort)", file=sys.stderr)
    sys.exit(USER_ERROR)


def _quiet_closed_loops(hook=sys.unraisablehook):
  """Orbax's failed background writes leave tensorstore callbacks that find its asyncio loop
  closed; each would print a traceback after the run's own error line."""

  def unraisable(info):
    if isinstance(info.exc_value, RuntimeError) and "Event loop is closed" in str(info.exc_value):
      return
    hook(info)

  sys.unraisablehook = unraisable


def _stop_before_training(signum, frame) -> None:
  """SIGTERM / SIGINT while starting up (imports, checks, compilation): nothing to save yet.

  Exits at once (an exception raised here could land in a callback that swallows it); the
  training loop installs its own handlers (research.train.interrupt) once it runs."""
  del frame
  name = signal.Signals(signum).name
  print(
    f"interrupted by {name} before training started; nothing to save; run the same "
    "command to start",
    flush=True,
  )
  os._exit(128 + signum)


def start(config_flag: str = "config") -> None:
  """Logging, signal handlers and the config file's own load error, before any work."""
  if not FLAGS["verbosity"].present:
    # Orbax and TFDS log warnings (and Orbax the tracebacks of failed background writes) that
    # the run reports itself, in one line; --verbosity=0 or 1 shows them.
    logging.set_verbosity(logging.FATAL)
  for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, _stop_before_training)
  if not verbose():
    _quiet_closed_loops()
  try:
    FLAGS[config_flag].value.keys()  # a config file that failed to load raises here
  except OSError as e:
    print(f"error: {one_line(e)}", file=sys.stderr)
    sys.exit(USER_ERROR)


def run_reporting_errors(fn, *args, **kwargs):
  """fn(*args, **kwargs); a documented error becomes one line and its exit code, anything else
  (a bug) is re-raised: Python prints its traceback and exits with 1."""
  from research.train import errors  # noqa: PLC0415  (JAX is up by now)

  try:
    return fn(*args, **kwargs)
  except Exception as e:  # noqa: BLE001  (mapped to documented codes; anything else re-raised)
    code = errors.exit_code(e)
    if code is None:
      raise
    if verbose():
      traceback.print_exc()
    interrupted = code >= 128
    print(
      one_line(e) if interrupted else f"error: {one_line(e)}",
      file=sys.stdout if interrupted else sys.stderr,
      flush=True,
    )
    if isinstance(e, errors.DiskFullError) and not verbose():
      # Nothing more can be written: exit-time handlers (TensorBoard's writers flushing again,
      # the checkpointer's threads) would only print tracebacks of the same ENOSPC after the
      # line. The checkpoints that are intact were committed before it was printed.
      sys.stderr.flush()
      os._exit(code)
    sys.exit(code)
