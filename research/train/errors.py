"""What a run can end with, besides success, and the exit code `research.main` gives each.

* 0: finished (or finished before: the run is reported again).
* 2: an error the user can fix, one `error:` line, nothing written: a bad config value or key, a
  missing dataset, a batch that does not divide, a workdir of another config or held by another
  run, a checkpoint of another model; a full disk (the line names the last intact step).
* 3: training diverged and stopped, its checkpoints kept: a loss that is not finite (or skipped
  more than optimizer.max_skipped_steps times in a row), a loss far above the run's first loss,
  an evaluation that is not finite.
* 130 / 143: stopped by SIGINT / SIGTERM after saving a checkpoint at that step; the same command
  resumes (Ctrl-C, preemption, Slurm's warning signal).

Anything else (a bug) keeps its traceback. `--verbosity=1` shows the traceback of the above too.
"""

import errno

from research.data import DatasetNotFoundError
from research.train.checkpoint import CheckpointMismatchError
from research.train.interrupt import Interrupted
from research.train.workdir import WorkdirBusyError

USER_ERROR = 2
DIVERGED = 3


class DivergenceError(FloatingPointError):
  """Training diverged: a loss or an evaluation that is not finite, or that blew up."""


class NonFiniteLossError(DivergenceError):
  """The training loss became NaN or Inf (too many steps in a row with optimizer.skip_nonfinite)."""


class DiskFullError(OSError):
  """No space left where the run writes; the message names the directory and the last step."""


def is_disk_full(error: BaseException) -> bool:
  """Whether `error`, or an error it was raised from, is ENOSPC (Orbax and tensorstore wrap it)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if "No space left on device" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def exit_code(error: BaseException) -> int | None:
  """The documented exit code of `error`, or None for an unexpected one (a bug)."""
  if isinstance(error, Interrupted):
    return error.exit_code
  if isinstance(error, DivergenceError):
    return DIVERGED
  if isinstance(
    error,
    ValueError | DatasetNotFoundError | WorkdirBusyError | DiskFullError | CheckpointMismatchError,
  ):
    return USER_ERROR
  return None
