"""What the user can fix, as one exception family, and the exit codes of the programs.

A `UserError` is an error the user can fix: `research.main` and `research.sweep` print its
message as one `error:` line and exit with USER_ERROR (2), having written nothing (a full disk
excepted: its checkpoints up to the named step stay). Each subclass also keeps the built-in
base its callers catch (`except ValueError`, `except FileNotFoundError`, ...).

Any other exception is a bug (ours, JAX's, Flax's): the program lets it through, so Python
prints its whole traceback and exits with BUG (1). Raise a `UserError` only with a message that
names the bad value, what was expected and the fix.

Imports only the standard library: research.data and research.models use it, and the programs
import it before JAX starts. research.optim does not (it imports only jax, optax and numpy);
research.train turns the ValueError of an optim factory given config values into a ConfigError.
"""

BUG = 1  # an unexpected exception: Python's traceback
USER_ERROR = 2  # a UserError: one `error:` line
DIVERGED = 3  # research.train.errors.DivergenceError: training diverged, checkpoints kept


class UserError(Exception):
  """What the user can fix: one `error:` line, exit 2."""


class ConfigError(UserError, ValueError):
  """A bad config value or key, a bad flag (`--workdir`, `--space`, `--trial`, ...)."""


class DatasetNotFoundError(UserError, FileNotFoundError):
  """A dataset is not present where it was looked for; the message says how to prepare it."""


class MalformedDatasetError(UserError, ValueError):
  """A dataset that is present but unusable: a truncated or damaged file, labels outside
  [0, num_classes); the message names the file or split and how to repair it."""


class WorkdirError(UserError, ValueError):
  """A workdir that cannot hold this run: empty, a URL, a file, not writable, or holding a run
  of another config or sweep."""


class WorkdirBusyError(UserError, RuntimeError):
  """Another live run holds the workdir."""


class CheckpointMismatchError(UserError, ValueError):
  """A checkpoint's arrays do not fit the state the config builds (not damage: nothing moves)."""


class NothingToFineTuneError(UserError, FileNotFoundError):
  """`init_from` names a path that holds no checkpoint."""


class DiskFullError(UserError, OSError):
  """No space left where the run writes; the message names the directory and the last step."""
