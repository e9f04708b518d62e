"""What a run can end with, besides success, and the exit code `research.main` gives each.

* 0: finished (or finished before: the run is reported again).
* 2 (USER_ERROR): a `research.errors.UserError`, what the user can fix: one `error:` line,
  nothing written: a bad config value or key (ConfigError), a missing dataset
  (DatasetNotFoundError) or a damaged one (MalformedDatasetError), a batch that does not
  divide, a workdir that cannot be used (WorkdirError) or is held by another run
  (WorkdirBusyError), a checkpoint of another model (CheckpointMismatchError), an init_from
  with no checkpoint (NothingToFineTuneError); a full disk (DiskFullError: the line names the
  last intact step).
* 3 (DIVERGED): training diverged and stopped, its checkpoints kept: a loss that is not finite
  (or skipped more than optimizer.max_skipped_steps times in a row), a loss far above the run's
  first loss, an evaluation that is not finite.
* 130 / 143: stopped by SIGINT / SIGTERM after saving a checkpoint at that step; the same command
  resumes (Ctrl-C, preemption, Slurm's warning signal).

Anything else is a bug (a plain ValueError included): it keeps its traceback and exits with 1.
`--verbosity=1` shows the traceback of the above too.
"""

import errno

from research.errors import (
  DIVERGED,
  USER_ERROR,
  CheckpointMismatchError,
  DatasetNotFoundError,
  DiskFullError,
  UserError,
  WorkdirBusyError,
)
from research.signals import Interrupted

__all__ = [
  "DIVERGED",
  "USER_ERROR",
  "CheckpointMismatchError",
  "DatasetNotFoundError",
  "DiskFullError",
  "DivergenceError",
  "NonFiniteLossError",
  "WorkdirBusyError",
  "exit_code",
  "is_disk_full",
]


class DivergenceError(FloatingPointError):
  """Training diverged: a loss or an evaluation that is not finite, or that blew up."""


class NonFiniteLossError(DivergenceError):
  """The training loss became NaN or Inf (too many steps in a row with optimizer.skip_nonfinite)."""


# tensorstore (which writes Orbax's checkpoint arrays) raises a plain ValueError without errno
# for a full disk: "RESOURCE_EXHAUSTED: Error writing ... No space left on device
# [os_error_code='28']" (tensorstore 0.1.86 under orbax-checkpoint 0.12.8). The errno is in
# that status payload, which is matched (not the text, which is locale- and OS-dependent).
_TENSORSTORE_ENOSPC = f"[os_error_code='{errno.ENOSPC}']"


def is_disk_full(error: BaseException) -> bool:
  """Whether `error`, or an error it was raised from (`__cause__` / `__context__`, at any depth),
  is an OSError with errno ENOSPC, or tensorstore's ValueError carrying that errno."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if isinstance(error, ValueError) and _TENSORSTORE_ENOSPC in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def exit_code(error: BaseException) -> int | None:
  """The documented exit code of `error`, or None for an unexpected one (a bug)."""
  if isinstance(error, Interrupted):
    return error.exit_code
  if isinstance(error, DivergenceError):
    return DIVERGED
  if isinstance(error, UserError):
    return USER_ERROR
  return None
